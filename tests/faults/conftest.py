"""Helpers for the fault suite: the e2e Setup (tests/e2e/conftest.py, loaded under another name),
free ports, an spd started with its stdout in a file, checksums of what the command printed vs
what spd stored in the job log."""
import hashlib
import importlib.util
import re
import resource
import socket
import subprocess
from pathlib import Path

import pytest

_E2E = Path(__file__).resolve().parent.parent / "e2e"
_spec = importlib.util.spec_from_file_location("sp_e2e_conftest", _E2E / "conftest.py")
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

SPD = e2e.SPD
SP_WRAPPER = e2e.SP_WRAPPER
pid_alive = e2e.pid_alive


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile(want: int) -> int:
    """Raises this process's RLIMIT_NOFILE soft limit towards `want` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stored_outputs(log_path: Path, machine: str = "testhost"):
    """Every machine_result record of `machine` in a job log, as (exit code, output bytes), in
    file order. The output is what spd stored: the record body minus the one newline the format adds."""
    data = log_path.read_bytes()
    head = re.compile(rb"########## " + re.escape(machine.encode()) + rb" from (\S+) ################\n"
                      rb"\*\*\*\* Exit Code (-?\d+) \*\*\*\*\*\*\n")
    out = []
    pos = 0
    while True:
        m = head.search(data, pos)
        if not m:
            break
        end_marker = b"\n####### END " + machine.encode() + b" from " + m.group(1) + b" at "
        end = data.find(end_marker, m.end())
        assert end >= 0, "unterminated machine_result record"
        out.append((int(m.group(2)), data[m.end():end]))
        pos = end + len(end_marker)
    return out


def write_generator(path: Path, megabytes: int, exit_code: int, copy: Path) -> None:
    """A deterministic output generator: numbered lines with multi-byte UTF-8 (é, €, 𝄞) so that a
    character split across reads or frames would show, `megabytes` MB in all, then `exit_code`.
    It writes the same bytes to `copy`: what the command printed, to compare with what spd stored."""
    path.write_text(f"""\
import sys
out = sys.stdout.buffer
copy = open("{copy}", "wb")
total = {megabytes} * 1000 * 1000
done = 0
i = 0
chunk = []
size = 0
while done < total:
    i += 1
    line = ("line %d caf\\u00e9 \\u20ac \\U0001d11e " % i + "x" * (i % 97) + "\\n").encode()
    chunk.append(line)
    size += len(line)
    if size >= 1 << 16:
        out.write(b"".join(chunk))
        copy.write(b"".join(chunk))
        done += size
        chunk = []
        size = 0
out.write(b"".join(chunk))
copy.write(b"".join(chunk))
out.flush()
copy.close()
sys.exit({exit_code})
""")


class SpdRun:
    """spd started in the background with stdout/stderr in files (a 200 MB --run-once print would
    not fit a pipe buffer nicely)."""

    def __init__(self, setup, args, limit_nofile=None, env=None):
        self.out_path = setup.scratch / "spd.out"
        self.err_path = setup.scratch / "spd.err"
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")

        def preexec():
            if limit_nofile:
                soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit_nofile, hard), hard))

        self.proc = subprocess.Popen([SPD, "-c", str(setup.config), *args], stdout=self._out, stderr=self._err,
                                     preexec_fn=preexec, env=env)
        setup.procs.append(self.proc)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        finally:
            self._out.flush()
            self._err.flush()

    def stderr(self) -> str:
        self._err.flush()
        return self.err_path.read_text(errors="replace")

    def rss_kib(self, field="VmRSS") -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return -1


def stream_job(name: str, command: str, extra_env: str = "", extra: str = "") -> str:
    return f"""
{name}:
  command: "{command}"
  targets: testhost
  target_type: glob
  schedule: '@yearly'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
{extra_env}{extra}"""


@pytest.fixture
def setup():
    import tempfile
    with tempfile.TemporaryDirectory(prefix="sp-faults-") as d:
        s = e2e.Setup(Path(d))
        try:
            yield s
        finally:
            s.cleanup()
