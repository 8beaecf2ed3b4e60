"""Shared helpers of the bench/ parts: the Release build in build-bench/, medians, table rows,
process figures (CPU seconds, RSS) and a subreaper so that daemonized sp_wrappers are our children."""
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("SALTPETER_BENCH_BUILD_DIR", ROOT / "build-bench"))
SPD = BUILD / "apps" / "spd" / "spd"
SP_WRAPPER = BUILD / "apps" / "sp_wrapper" / "sp_wrapper"
SP_LOADGEN = BUILD / "bench" / "sp_loadgen"


def build(*targets):
    """Configures build-bench (Release, ccache) once and builds `targets` with -j2, unless
    SALTPETER_BENCH_NO_BUILD is set (bench/run builds everything first)."""
    if os.environ.get("SALTPETER_BENCH_NO_BUILD"):
        return
    env = dict(os.environ)
    env.setdefault("CCACHE_DIR", str(Path.home() / ".cache" / "ccache"))
    env.setdefault("CCACHE_BASEDIR", str(ROOT))
    env.setdefault("CCACHE_NOHASHDIR", "1")
    args = ["cmake", "-S", str(ROOT), "-B", str(BUILD), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release"]
    if subprocess.run(["which", "ccache"], capture_output=True).returncode == 0:
        args.append("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, env=env)
    subprocess.run(["cmake", "--build", str(BUILD), "-j2", "--target", *targets], check=True, env=env,
                   stdout=sys.stderr)


def median(values):
    return statistics.median(values) if values else float("nan")


def row(part, metric, value, unit="", note=""):
    """One line of the bench table (markdown), flushed at once."""
    if isinstance(value, float):
        value = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    print(f"| {part} | {metric} | {value} | {unit} | {note} |", flush=True)


def header():
    print("| part | metric | median | unit | note |")
    print("|---|---|---|---|---|", flush=True)


def make_subreaper():
    """Orphans (the daemonized sp_wrapper) become our children, so wait4 gives their rusage."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


class SpdConfig:
    """A scratch config dir, logdir and wrapper logdir for one spd."""

    def __init__(self, settings="", jobs=""):
        self._tmp = tempfile.TemporaryDirectory(prefix="sp-bench-")
        self.root = Path(self._tmp.name)
        self.config = self.root / "config"
        self.logdir = self.root / "log"
        for d in (self.config, self.logdir, self.root / "wlog"):
            d.mkdir()
        base = textwrap.dedent(f"""\
            saltpeter_config:
              logdir: {self.logdir}
              machines_ws_bind_addr: 127.0.0.1
              machines_ws_port: 0
              default_wrapper_logdir: {self.root / 'wlog'}
              default_wrapper_path: {SP_WRAPPER}
              local_minions: [testhost]
            """)
        (self.config / "bench.yaml").write_text(base + textwrap.indent(textwrap.dedent(settings), "  ") + "\n" + jobs)

    def cleanup(self):
        self._tmp.cleanup()


def machine_note():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return f"{os.cpu_count()} x {cpu}; load average {load[0]:.1f} at start"
