"""spd's own faults with the durable store (state_db): kill -9 in the middle of a streaming run and
start again ⇒ the wrapper is re-adopted and the run completes with the command's bytes, once, and
its exit code; a wrapper that does not come back ⇒ 253 with a note, counted from the restart; a
corrupt or unusable state_db ⇒ spd refuses to start and names the file."""
import os
import signal
import sqlite3
import subprocess
import textwrap
import time

from conftest import SPD, SpdRun, free_port, pid_alive, sha256_file, stored_outputs


# Unique per test process: the wrapper's host lock in /tmp is shared with other checkouts' tests.
STREAM = f"frestart{os.getpid()}"
GONE = f"fgone{os.getpid()}"


def once_soon(seconds_ahead=3):
    t = time.gmtime(time.time() + seconds_ahead)
    return f"{t.tm_sec} {t.tm_min} {t.tm_hour} {t.tm_mday} {t.tm_mon} ? {t.tm_year}"


def write_config(setup, jobs_yaml, port, extra=""):
    text = textwrap.dedent(f"""\
        saltpeter_config:
          logdir: {setup.logdir}
          machines_ws_bind_addr: 127.0.0.1
          machines_ws_port: {port}
          default_wrapper_logdir: {setup.wrapper_logdir}
          local_minions: [testhost]
          heartbeat_timeout: 4
        """) + textwrap.indent(textwrap.dedent(extra), "  ") + "\n" + textwrap.dedent(jobs_yaml)
    (setup.config / "jobs.yaml").write_text(text)


def slow_generator(path, copy, pidfile, chunks, exit_code):
    """Prints `chunks` blocks of numbered UTF-8 lines, 0.15 s apart, and the same bytes to `copy`."""
    path.write_text(f"""\
import os, sys, time
open("{pidfile}", "w").write(str(os.getppid()))
out = sys.stdout.buffer
copy = open("{copy}", "wb")
n = 0
for c in range({chunks}):
    block = b"".join(("line %d caf\\u00e9 \\u20ac " % (n + i) + "y" * ((n + i) % 61) + "\\n").encode() for i in range(400))
    n += 400
    out.write(block)
    out.flush()
    copy.write(block)
    copy.flush()
    time.sleep(0.15)
copy.close()
sys.exit({exit_code})
""")


def kill9(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def test_kill_9_mid_stream_then_restart_completes_the_run_byte_identical(setup):
    port = free_port()
    gen, copy, pidfile = setup.scratch / "gen.py", setup.scratch / "printed.bin", setup.scratch / "wrapper.pid"
    slow_generator(gen, copy, pidfile, chunks=60, exit_code=7)
    write_config(setup, f"""
        {STREAM}:
          command: "/usr/bin/python3 {gen}"
          targets: testhost
          schedule: '{once_soon()}'
          env:
            SP_OUTPUT_INTERVAL_MS: '50'
        """, port)
    first = SpdRun(setup, [])
    wrapper_pid = int(setup.wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 30, "the wrapper pid"))
    time.sleep(3)  # well into the stream (about 9 s in all)
    kill9(first.proc)
    killed_at = time.monotonic()
    assert pid_alive(wrapper_pid), "the wrapper must outlive spd"
    time.sleep(1.5)  # the wrapper keeps the output it cannot send
    second = SpdRun(setup, [])
    setup.wait_for(lambda: "Exit Code 7" in setup.job_log(STREAM), 60, "the result after the restart")
    elapsed = time.monotonic() - killed_at
    second.proc.terminate()
    assert second.wait(20) == 0
    err = second.stderr()
    assert "re-opened after a restart of spd" in err, err[-3000:]
    assert "wrapper re-adopted after the restart" in err, err[-3000:]
    # What the command printed, exactly once, with its exit code: nothing lost, nothing doubled.
    records = stored_outputs(setup.logdir / f"{STREAM}.log")
    assert [c for c, _ in records] == [7], [c for c, _ in records]
    printed = copy.read_bytes()
    assert len(printed) > 500_000
    assert records[0][1] == printed, (len(records[0][1]), len(printed))
    # The state database says the same: one run, finished, the target's code and every byte.
    db = sqlite3.connect(str(setup.logdir / "state.db"))
    try:
        runs = db.execute("SELECT instance, status, ended IS NOT NULL FROM runs").fetchall()
        assert len(runs) == 1 and runs[0][1] == "failure" and runs[0][2] == 1, runs
        target = db.execute("SELECT retcode, spd_verdict, output_bytes FROM targets").fetchall()
        assert target == [(7, 0, len(printed))], target
    finally:
        db.close()
    print(f"kill -9 + restart: {len(printed)} bytes identical (sha256 {sha256_file(copy)[:16]}), "
          f"result {elapsed:.1f} s after the kill")


def test_a_wrapper_that_does_not_come_back_gets_253_from_the_restart(setup):
    port = free_port()
    pidfile = setup.scratch / "wrapper.pid"
    write_config(setup, f"""
        {GONE}:
          command: "echo started; echo $PPID > {pidfile}; sleep 60"
          targets: testhost
          schedule: '{once_soon()}'
          env:
            SP_OUTPUT_INTERVAL_MS: '50'
        """, port)
    first = SpdRun(setup, [])
    wrapper_pid = int(setup.wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 30, "the wrapper pid"))
    time.sleep(1)
    kill9(first.proc)
    os.killpg(os.getpgid(wrapper_pid), signal.SIGKILL)  # the wrapper and its job: nobody will report
    second = SpdRun(setup, [])
    started = time.monotonic()
    setup.wait_for(lambda: "Exit Code 253" in setup.job_log(GONE), 30, "the 253 verdict")
    elapsed = time.monotonic() - started
    # heartbeat_timeout (4 s) counted from the restart, the check runs every second.
    assert 3 <= elapsed <= 9, elapsed
    second.proc.terminate()
    second.wait(20)
    records = stored_outputs(setup.logdir / f"{GONE}.log")
    assert [c for c, _ in records] == [253]
    assert records[0][1].startswith(b"started\n")
    assert b"spd restarted and the wrapper did not reconnect within" in records[0][1]
    db = sqlite3.connect(str(setup.logdir / "state.db"))
    try:
        (notes, verdict), = db.execute("SELECT notes, spd_verdict FROM targets").fetchall()
        assert verdict == 1 and "did not reconnect" in notes, notes
        (status,), = db.execute("SELECT status FROM runs").fetchall()
        assert status == "failure"
    finally:
        db.close()


def test_corrupt_or_unusable_state_db_stops_spd_at_start_up(setup):
    write_config(setup, f"""
        {GONE}:
          command: "true"
          targets: testhost
          schedule: '@yearly'
        """, 0)
    setup.logdir.mkdir(parents=True, exist_ok=True)
    db = setup.logdir / "state.db"
    db.write_bytes(b"this is not a database, it is a text file " * 200)
    proc = subprocess.run([SPD, "-c", str(setup.config)], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert str(db) in proc.stderr, proc.stderr
    assert "not a database" in proc.stderr, proc.stderr
    # The file is left as it was: spd never replaces history it cannot read.
    assert db.read_bytes().startswith(b"this is not a database")
    # A state_db whose directory cannot exist: named as well.
    write_config(setup, f"""
        {GONE}:
          command: "true"
          targets: testhost
          schedule: '@yearly'
        """, 0, extra=f"state_db: {db}/sub/state.db\n")
    proc = subprocess.run([SPD, "-c", str(setup.config)], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert f"{db}/sub/state.db" in proc.stderr, proc.stderr
