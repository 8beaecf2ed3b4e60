"""Job policies and hot reload through the real spd (issue 6): inotify reload (changed schedule,
broken file, removed job, restart-only keys) and the misfire policy across an spd restart."""
import datetime
import sqlite3
import re
import signal
import time



def query(db_path, sql):
    db = sqlite3.connect(str(db_path))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def stop(spd):
    spd.send_signal(signal.SIGTERM)
    out, err = spd.communicate(timeout=20)
    assert spd.returncode == 0, err
    return err


def test_inotify_reload_changes_schedule_keeps_broken_file_and_stops_removed_job(setup):
    setup.write_config("""
        ticker:
          command: "echo tick"
          targets: testhost
          schedule: '@yearly'
        """)
    spd = setup.start_spd()
    time.sleep(1.5)
    assert setup.job_log("ticker") == ""
    # No SIGHUP: the edit alone makes spd fire the job every second from now on.
    setup.write_config("""
        ticker:
          command: "echo tick"
          targets: testhost
          schedule: '* * * * * * *'
        """, settings="kill_grace: 7\n")
    setup.wait_for(lambda: setup.job_log("ticker").count("###### Finished") >= 2, 20, "runs after the edit")
    # A broken file keeps its last good version: the job goes on firing.
    (setup.config / "jobs.yaml").write_text("ticker: [unclosed\n")
    time.sleep(1.5)
    before = setup.job_log("ticker").count("###### Finished")
    setup.wait_for(lambda: setup.job_log("ticker").count("###### Finished") >= before + 2, 20,
                   "runs with the broken file")
    # Removing the job stops it.
    setup.write_config("""
        other:
          command: "true"
          targets: testhost
          schedule: '@yearly'
        """)
    time.sleep(2)
    stopped_at = setup.job_log("ticker").count("###### Finished")
    time.sleep(2.5)
    assert setup.job_log("ticker").count("###### Finished") == stopped_at
    err = stop(spd)
    assert "changed; reloading" in err
    assert "keeping the last good version" in err
    assert "kill_grace changed; this change will only take effect after a restart" in err


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def once_at(t):
    # sec min hour dom mon dow year: fires exactly once.
    return f"'{t.second} {t.minute} {t.hour} {t.day} {t.month} * {t.year}'"


def test_misfire_across_a_restart_run_once_catches_up_once_and_skip_does_not(setup):
    fire = utc_now() + datetime.timedelta(seconds=8)
    jobs = f"""
        catchup:
          command: "echo caught up"
          targets: testhost
          schedule: {once_at(fire)}
          misfire: run_once
          misfire_grace: 600
        dropper:
          command: "echo dropped"
          targets: testhost
          schedule: {once_at(fire)}
        """
    setup.write_config(jobs)
    spd = setup.start_spd()
    state = setup.logdir / "state.db"
    setup.wait_for(lambda: state.exists(), 10, "the state database")
    time.sleep(1)
    stop(spd)
    assert dict(query(state, "SELECT job, fire FROM last_fire"))["catchup"] > 0
    # spd is down across the fire time.
    while utc_now() <= fire + datetime.timedelta(seconds=1):
        time.sleep(0.2)
    spd = setup.start_spd()
    setup.wait_for(lambda: "###### Finished catchup_" in setup.job_log("catchup"), 20, "the catch-up run")
    time.sleep(1)
    err = stop(spd)
    # One run: one `start` record (machine_start records read "Starting <instance> on <machine>").
    assert len(re.findall(r"###### Starting catchup_[0-9_]+ at ", setup.job_log("catchup"))) == 1
    assert "caught up" in setup.job_log("catchup")
    assert setup.job_log("dropper") == ""
    assert "catchup: spd was down: 1 fire time(s) missed" in err
    assert "misfire: run_once, one catch-up run (within misfire_grace 600 s)" in err
    assert "dropper: spd was down: 1 fire time(s) missed" in err
    assert "misfire: skip, no catch-up run" in err
    # The decisions and fire times are in the state database (0600).
    decisions = dict(query(state, "SELECT job, detail FROM decisions WHERE kind = 'misfire'"))
    assert "(1 fire time(s) missed)" in decisions["catchup"]
    assert "no catch-up run" in decisions["dropper"]
    assert dict(query(state, "SELECT job, fire FROM last_fire"))["dropper"] == int(fire.timestamp())
    assert (state.stat().st_mode & 0o777) == 0o600
