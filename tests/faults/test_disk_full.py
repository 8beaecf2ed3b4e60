"""logdir on a full disk (a 1 MiB tmpfs): spd says clearly that it cannot write the job log (the
path and the reason, once), keeps running and still reports the right result. Needs mount(2)
(root or CAP_SYS_ADMIN); skipped otherwise."""
import os
import re
import subprocess

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
        # First start: the wrapper secret (default: in logdir) cannot be created, spd refuses to start
        # and says which file.
        spd = SpdRun(setup, ["--run-once", BIG])
        assert spd.wait(60) == 1
        assert f"cannot write wrapper secret {logdir}/wrapper.secret" in spd.stderr()
        # With the secret elsewhere, spd starts and the job log is what cannot be written.
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
