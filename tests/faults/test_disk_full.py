"""logdir on a full disk (a 1 MiB tmpfs): spd says clearly that it cannot write the job log (the
path and the reason, once), keeps running and still reports the right result. Needs mount(2)
(root or CAP_SYS_ADMIN); skipped otherwise."""
import os
import re
import subprocess
import time

import pytest

from conftest import SpdRun


# Unique per test process: the wrapper host lock in /tmp is shared with other checkouts' tests.
BIG = f"fbig{os.getpid()}"


def mount_tmpfs(path, size):
    path.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                          capture_output=True, text=True)
    return proc.returncode == 0


def test_full_logdir_is_reported_and_does_not_stop_spd(setup):
    small = setup.root / "small"
    if not mount_tmpfs(small, "1m"):
        pytest.skip("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)")
    try:
        logdir = small / "log"
        logdir.mkdir()
        # Fill the disk, leaving nothing for the job log.
        with open(small / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        setup.write_config(f"""
{BIG}:
  command: "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); echo output line $i; done; exit 9"
  targets: testhost
  schedule: '@yearly'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
""", settings=f"logdir: {logdir}\n")
        # First start: the state database (default: in logdir) cannot be created, spd refuses to
        # start rather than run without history, and says which file and why.
        spd = SpdRun(setup, ["--run-once", BIG])
        assert spd.wait(60) == 1
        assert f"state database {logdir}/state.db: database or disk is full (no space left on its disk)" in spd.stderr()
        # With the state database elsewhere, the wrapper secret is next: named as well.
        (setup.config / "state.yaml").write_text(f"saltpeter_config:\n  state_db: {setup.root}/state.db\n")
        spd = SpdRun(setup, ["--run-once", BIG])
        assert spd.wait(60) == 1
        assert f"cannot write wrapper secret {logdir}/wrapper.secret" in spd.stderr()
        # With the secret elsewhere too, spd starts and the job log is what cannot be written.
        (setup.config / "secret.yaml").write_text(f"saltpeter_config:\n  wrapper_secret_file: {setup.root}/secret\n")
        spd = SpdRun(setup, ["--run-once", BIG])
        rc = spd.wait(120)
        err = spd.stderr()
        out = spd.out_path.read_text(errors="replace")
        # The result is still right and still reported (run-once prints it).
        assert rc == 9, err[-3000:]
        assert "===== testhost: exit 9" in out and "output line 20000\n" in out
        # The failure is named once: path and reason.
        path = str(logdir / f"{BIG}.log")
        lines = [l for l in err.splitlines() if "cannot write job log" in l]
        assert len(lines) == 1, lines
        assert all(path in l and "No space left on device" in l for l in lines), lines
        print("spd on a full logdir:", *lines, sep="\n  ")
        # What reached the disk: nothing, or a record cut short; report it (spd writes records whole
        # or reports the failure, it cannot un-write a partial record).
        size = (logdir / f"{BIG}.log").stat().st_size if (logdir / f"{BIG}.log").exists() else 0
        print(f"job log on the full disk: {size} bytes")
        # Once there is room again, the next run is logged in full.
        os.unlink(small / "filler")
        spd = SpdRun(setup, ["--run-once", BIG])
        assert spd.wait(120) == 9
        assert "cannot write job log" not in spd.stderr()
        assert re.search(r"\*\*\*\* Exit Code 9 \*+\n(output line \d+\n)*output line 20000\n",
                         (logdir / f"{BIG}.log").read_text(errors="replace"))
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


def test_full_state_db_is_not_acknowledged_and_is_stored_once_there_is_room(setup):
    """The state database on a full disk: spd says so, does not acknowledge the output it could not
    commit (the wrapper keeps it), writes it again with backoff, and once there is room the run
    completes with every byte, in order, exactly once."""
    import sqlite3
    small = setup.root / "dbdisk"
    if not mount_tmpfs(small, "4m"):
        pytest.skip("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)")
    job = f"fdbfull{os.getpid()}"
    copy = setup.scratch / "printed.txt"
    try:
        setup.write_config(f"""
{job}:
  command: "for b in $(seq 1 30); do seq $(( (b-1)*4000+1 )) $(( b*4000 )) | sed 's/^/state line /'; sleep 0.2; done | tee {copy}; exit 5"
  targets: testhost
  schedule: '@yearly'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
""", settings=f"state_db: {small}/state.db\n")
        spd = SpdRun(setup, ["--run-once", job])
        # Let spd create the database, then fill the disk behind it.
        setup.wait_for(lambda: (small / "state.db").exists(), 30, "the state database")
        with open(small / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        setup.wait_for(lambda: "not acknowledging it to the wrapper" in spd.stderr(), 60, "the store failure")
        assert spd.proc.poll() is None, "spd must keep running"
        err = spd.stderr()
        line = next(l for l in err.splitlines() if "not acknowledging it to the wrapper" in l)
        assert f"{small}/state.db" in line and ("disk is full" in line or "No space" in line), line
        print("spd on a full state_db:", line, sep="\n  ")
        time.sleep(2)  # a retry or two fail as well
        os.unlink(small / "filler")
        rc = spd.wait(120)
        err = spd.stderr()
        assert rc == 5, err[-3000:]
        assert "stored again" in err, err[-3000:]
        printed = copy.read_bytes()
        db = sqlite3.connect(str(small / "state.db"))
        try:
            chunks = db.execute("SELECT data FROM output ORDER BY head DESC, id").fetchall()
            stored = b"".join(bytes(c[0]) for c in chunks)
            (retcode, nbytes), = db.execute("SELECT retcode, output_bytes FROM targets").fetchall()
        finally:
            db.close()
        assert retcode == 5
        assert nbytes == len(printed), (nbytes, len(printed))
        assert stored == printed, (len(stored), len(printed))
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)
