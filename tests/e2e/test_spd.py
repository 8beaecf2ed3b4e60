"""spd with the local transport and our sp_wrapper, as real processes."""
import os
import re
import signal
import time

from conftest import SPD, log_seconds_between, pid_alive


def job(name, command, extra=""):
    return f"""
{name}:
  command: "{command}"
  targets: testhost
  target_type: glob
  schedule: '@yearly'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
{extra}"""


def test_run_once_streams_exact_output_and_succeeds(setup):
    setup.write_config(job("hello", r"printf 'line 1\\nline 2\\n'; printf 'caf\\303\\251 no newline'"))
    proc, took = setup.run_once("hello")
    assert proc.returncode == 0, proc.stderr
    assert "===== testhost: exit 0 (success)\nline 1\nline 2\ncafé no newline\n" in proc.stdout
    assert "hello_" in proc.stdout and "success (1/1 targets)" in proc.stdout
    log = setup.job_log("hello")
    assert "###### Starting hello_" in log
    assert "###### Starting hello_" in log and " on testhost at " in log
    assert "########## testhost from hello_" in log and "**** Exit Code 0 ******\nline 1\nline 2\ncafé no newline\n" in log
    assert "###### Finished hello_" in log
    # The wrapper's host lock is this test's own ($TMPDIR), holding the wrapper's PID.
    assert setup.lockfile("hello").read_text().strip().isdigit()


def test_exit_codes_pass_through(setup):
    setup.write_config(job("three", "echo failing; exit 3") + job("missing", "no_such_command_xyz"))
    proc, _ = setup.run_once("three")
    assert proc.returncode == 3, proc.stderr
    assert "===== testhost: exit 3 (the command's own failure (exit 3))\nfailing\n" in proc.stdout
    proc, _ = setup.run_once("missing")
    assert proc.returncode == 127, proc.stderr
    assert "not found" in proc.stdout


def test_missing_wrapper_is_127_within_two_seconds(setup):
    setup.write_config(job("nowrap", "true", "  wrapper_path: /nonexistent/sp_wrapper\n"))
    proc, took = setup.run_once("nowrap")
    assert proc.returncode == 127, proc.stderr
    assert "Salt execution error:\n/nonexistent/sp_wrapper: No such file or directory" in proc.stdout
    assert log_seconds_between(proc.stderr, "run started", "finished with 127") < 2.0


def test_timeout_is_124_and_the_process_tree_is_gone(setup):
    pidfile = setup.scratch / "pids"
    setup.write_config(job("slow", f"sleep 300 & echo $! > {pidfile}; echo $$ >> {pidfile}; wait", "  timeout: 2\n"))
    proc, took = setup.run_once("slow")
    assert proc.returncode == 124, proc.stdout + proc.stderr
    assert "[Job exceeded timeout of 2 seconds]" in proc.stdout
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 2
    for pid in pids:
        assert not pid_alive(pid), f"process {pid} survived the timeout"
    assert took < 15


def test_wrapper_that_never_connects_is_254(setup):
    fake = setup.scratch / "fake_wrapper"
    fake.write_text("#!/bin/sh\necho 'Saltpeter Wrapper version fake'\nexit 0\n")
    fake.chmod(0o755)
    setup.write_config(job("ghost", "true", f"  wrapper_path: {fake}\n"), settings="startup_timeout: 3\n")
    proc, took = setup.run_once("ghost")
    assert proc.returncode == 254, proc.stdout + proc.stderr
    assert "Wrapper failed to connect within 3s" in proc.stdout
    assert 2.5 < took < 10


def once_soon(seconds_ahead=2):
    """A seven-field expression for one firing a few seconds from now (UTC)."""
    t = time.gmtime(time.time() + seconds_ahead)
    return f"{t.tm_sec} {t.tm_min} {t.tm_hour} {t.tm_mday} {t.tm_mon} ? {t.tm_year}"


def test_stopped_wrapper_is_253_after_the_heartbeat_timeout_then_recovers(setup):
    pidfile = setup.scratch / "wrapper.pid"
    # The 2 s before the pid is written let the wrapper connect and send `start` even on a loaded
    # machine: stopped before that, it would meet the startup window (254), not the heartbeat timeout.
    setup.write_config(job("frozen", f"sleep 2; echo $PPID > {pidfile}; sleep 22; echo done").replace("'@yearly'", f"'{once_soon()}'"))
    spd = setup.start_spd()
    wrapper_pid = int(setup.wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 15, "the wrapper pid"))
    os.kill(wrapper_pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        setup.wait_for(lambda: "Exit Code 253" in setup.job_log("frozen"), 25, "the 253 verdict")
        elapsed = time.monotonic() - stopped_at
        # 15 s of silence counted from the last heartbeat, which may be up to 5 s (the interval)
        # older than SIGSTOP; the verdict timer checks every second.
        assert 15 - 5 - 0.5 <= elapsed <= 15 + 1 + 2, elapsed
        assert "no heartbeat for 1" in setup.job_log("frozen")
    finally:
        os.kill(wrapper_pid, signal.SIGCONT)
    # The wrapper comes back; its real result replaces the 253 (a second result record follows).
    setup.wait_for(lambda: "**** Exit Code 0 ******\ndone\n" in setup.job_log("frozen"), 30, "the real result")
    log = setup.job_log("frozen")
    assert log.count("###### Finished frozen_") == 2
    assert "[SALTPETER ERROR" not in log.split("Exit Code 0")[1]
    spd.send_signal(signal.SIGTERM)
    out, err = spd.communicate(timeout=20)
    assert spd.returncode == 0
    assert "came back after verdict 253" in err


def test_scheduled_firings_and_overlap_and_clean_stop(setup):
    setup.write_config(f"""
ticker:
  command: "echo tick; sleep 1.5"
  targets: testhost
  schedule: '* * * * * * *'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
""")
    spd = setup.start_spd()
    setup.wait_for(lambda: setup.job_log("ticker").count("###### Finished") >= 2, 20, "two finished runs")
    spd.send_signal(signal.SIGTERM)
    out, err = spd.communicate(timeout=20)
    assert spd.returncode == 0, err
    log = setup.job_log("ticker")
    assert "**** Exit Code 0 ******\ntick\n" in log
    assert "###### Overlap detected on ticker_" in log  # every-second firings while one runs
    assert "SIGTERM: stopping" in err


def test_sighup_reloads_and_bad_files_do_not_stop_spd(setup):
    setup.write_config("")
    spd = setup.start_spd()
    setup.wait_for(lambda: True, 1, "start")
    time.sleep(1)
    (setup.config / "broken.yaml").write_text("bad: [unclosed\n")
    setup.write_config(job("later", "echo reloaded").replace("'@yearly'", "'* * * * * * *'"))
    spd.send_signal(signal.SIGHUP)
    setup.wait_for(lambda: "reloaded" in setup.job_log("later"), 15, "a run of the reloaded job")
    spd.send_signal(signal.SIGTERM)
    out, err = spd.communicate(timeout=20)
    assert spd.returncode == 0
    assert "configuration reloaded" in err
    assert re.search(r"broken\.yaml:[0-9]+:[0-9]+: YAML syntax error", err)


def test_bad_config_dir_fails_start(setup):
    import subprocess
    proc = subprocess.run([SPD, "-c", str(setup.root / "nope")], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "cannot read config directory" in proc.stderr


def test_connections_cut_mid_stream_lose_and_duplicate_nothing(setup):
    from cutting_proxy import CuttingProxy
    # Find the machines port first: spd logs it; the wrappers are pointed at the proxy through the
    # job's env (custom env keys override SP_* ones, as in the original).
    setup.write_config("", settings="machines_ws_port: 0\n")
    probe = setup.start_spd()
    line = setup.wait_for(lambda: next((l for l in iter(probe.stderr.readline, "") if "listening on" in l), None), 10,
                          "the machines port")
    port = int(line.strip().rsplit(":", 1)[1].split()[0])
    probe.terminate()
    probe.wait(10)
    proxy = CuttingProxy(port, seed=20261128, min_bytes=20_000, max_bytes=400_000, cuts=12).start()
    try:
        lines = 60000
        setup.write_config(f"""
stream:
  command: "i=0; while [ $i -lt {lines} ]; do i=$((i+1)); echo \\"line $i of the stream\\"; [ $((i % 3000)) -eq 0 ] && sleep 0.2; done; exit 5"
  targets: testhost
  schedule: '@yearly'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
    SP_WEBSOCKET_URL: ws://127.0.0.1:{proxy.port}
""", settings=f"machines_ws_port: {port}\nheartbeat_timeout: 30\n")
        proc, took = setup.run_once("stream", timeout=180)
    finally:
        proxy.stop()
    assert proc.returncode == 5, proc.stderr[-3000:]
    expected = "".join(f"line {i} of the stream\n" for i in range(1, lines + 1))
    body = proc.stdout.split("===== testhost: exit 5 (the command's own failure (exit 5))\n", 1)[1]
    body = body.rsplit("===== stream_", 1)[0]
    assert body == expected, f"output differs (got {len(body)} bytes, expected {len(expected)})"
    assert proxy.cuts_done >= 5, proxy.cuts_done
