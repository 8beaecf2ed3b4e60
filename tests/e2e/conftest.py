"""Helpers for the end-to-end tests: real spd, sp_wrapper and spctl processes on 127.0.0.1."""
import os
import signal
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

SPD = os.environ.get("SPD", "spd")
SP_WRAPPER = os.environ.get("SP_WRAPPER", "sp_wrapper")
SPCTL = os.environ.get("SPCTL", "spctl")


class Setup:
    """A config directory with fast timers, a log directory and a scratch directory."""

    def __init__(self, root: Path):
        self.root = root
        self.config = root / "config"
        self.logdir = root / "log"
        self.wrapper_logdir = root / "wrapper-log"
        self.scratch = root / "scratch"
        self.tmpdir = root / "tmp"
        for d in (self.config, self.logdir, self.wrapper_logdir, self.scratch, self.tmpdir):
            d.mkdir()
        self.procs = []
        # spd (and the fake salt doubles) put each local minion's wrapper host lock in $TMPDIR:
        # this test's own, so that checkouts testing in parallel never share a lock file.
        self._saved_tmpdir = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = str(self.tmpdir)

    def lockfile(self, job: str, minion: str = "testhost") -> Path:
        """Where the wrapper of `job` on local `minion` takes its host lock."""
        return self.tmpdir / f"sp_wrapper_{job}.{minion}.lock"

    def write_config(self, jobs_yaml: str, settings: str = "", name: str = "jobs.yaml"):
        base = textwrap.dedent(f"""\
            saltpeter_config:
              logdir: {self.logdir}
              machines_ws_bind_addr: 127.0.0.1
              machines_ws_port: 0
              default_wrapper_logdir: {self.wrapper_logdir}
              local_minions: [testhost]
            """)
        text = base + textwrap.indent(textwrap.dedent(settings), "  ") + "\n" + textwrap.dedent(jobs_yaml)
        (self.config / name).write_text(text)

    def run_once(self, job: str, *args, timeout: float = 90, env=None):
        start = time.monotonic()
        proc = subprocess.run([SPD, "-c", str(self.config), "--run-once", job, *args], capture_output=True, text=True,
                              timeout=timeout, env=env)
        return proc, time.monotonic() - start

    def start_spd(self, *args):
        proc = subprocess.Popen([SPD, "-c", str(self.config), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def job_log(self, job: str) -> str:
        path = self.logdir / f"{job}.log"
        return path.read_text() if path.exists() else ""

    def wait_for(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def cleanup(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if self._saved_tmpdir is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = self._saved_tmpdir


def log_seconds_between(stderr: str, first: str, second: str) -> float:
    """Seconds between the spd log lines containing `first` and `second` (their timestamps)."""
    import datetime

    def stamp(text):
        line = next(l for l in stderr.splitlines() if text in l)
        return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")

    return (stamp(second) - stamp(first)).total_seconds()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def setup():
    with tempfile.TemporaryDirectory(prefix="sp-e2e-") as d:
        s = Setup(Path(d))
        try:
            yield s
        finally:
            s.cleanup()


class ApiSpd:
    """spd started by `setup` with its stderr drained by a thread; `url` is its API once the log
    says where it listens (the config must turn the API on, port 0 is fine)."""

    def __init__(self, setup, *args):
        import threading
        self.proc = setup.start_spd(*args)
        self.lines = []
        threading.Thread(target=self._drain, daemon=True).start()
        port = setup.wait_for(self._port, 20, "the API port in spd's log")
        self.url = f"http://127.0.0.1:{port}"

    def _drain(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    def _port(self):
        import re
        for line in list(self.lines):
            m = re.search(r"API listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                return int(m.group(1))
        return None

    def log(self):
        return "".join(self.lines)
