"""A run from before an spd restart (same logdir, so the same state.db) is still listed by GET
/jobs/{name}/runs, served by GET /runs/{instance} and /runs/{instance}/output, shown by `spctl
history` and `spctl logs`, and on GET /timeline and the UI's getTimeline (issue 8).

Needs the RunTracker -> RunStore wiring (put_run/put_target/output/finish_run from the tracker):
without it nothing reaches the store and the checks after the restart fail."""
import asyncio
import json
import re

from test_store_history import JOBS, SETTINGS, Spd, get_timeline, http, spctl


def test_a_run_from_before_a_restart_is_in_history_logs_and_timeline(setup):
    setup.write_config(JOBS, settings=SETTINGS)
    spd = Spd(setup)
    r = spctl(spd, "run-now", "hist_exit3", "--wait")
    assert r.returncode == 3, r.stdout + r.stderr
    instance = re.search(r"hist_exit3_\d+(_\d+)?", r.stdout + r.stderr).group(0)
    status, body = http(spd, f"/runs/{instance}/output")
    assert status == 200 and json.loads(body)["outputs"]["testhost"] == "before restart\nsecond line\n", body
    spd.stop()
    assert (setup.logdir / "state.db").exists()

    spd = Spd(setup)
    # Nothing of the old run is in the new spd's memory; all of it comes from state.db.
    status, body = http(spd, "/jobs/hist_exit3/runs")
    assert status == 200, body
    runs = json.loads(body)
    assert [run["instance"] for run in runs] == [instance], body
    assert runs[0]["finished"] is True and runs[0]["success"] is False
    assert runs[0]["targets"]["testhost"]["retcode"] == 3
    assert runs[0]["targets"]["testhost"]["state"] == "finished"
    assert runs[0]["targets"]["testhost"]["output_length"] == len("before restart\nsecond line\n")

    status, body = http(spd, f"/runs/{instance}")
    assert status == 200, body
    run = json.loads(body)
    assert run["job"] == "hist_exit3" and run["targets"]["testhost"]["retcode"] == 3
    assert run["targets"]["testhost"]["duration"] >= 0
    status, body = http(spd, f"/runs/{instance}/output")
    assert status == 200, body
    assert json.loads(body)["outputs"] == {"testhost": "before restart\nsecond line\n"}
    status, body = http(spd, f"/runs/{instance}/output?machine=nohost")
    assert status == 404 and "nohost" in body

    r = spctl(spd, "history", "hist_exit3")
    assert r.returncode == 0, r.stderr
    assert instance in r.stdout and "testhost=3(" in r.stdout, r.stdout
    r = spctl(spd, "logs", "hist_exit3")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "testhost | before restart\ntesthost | second line\n", r.stdout
    r = spctl(spd, "logs", "hist_exit3", "--instance", instance)
    assert r.returncode == 0 and "testhost | second line" in r.stdout, r.stdout + r.stderr

    status, body = http(spd, "/timeline?start=now-1h&end=now")
    assert status == 200, body
    mine = [e for e in json.loads(body)["content"] if e["job_instance"] == instance]
    assert [e["msg_type"] for e in mine] == ["machine_start", "machine_result"], body
    assert mine[1]["ret_code"] == 3 and mine[0]["cron"] == "hist_exit3"
    status, body = http(spd, "/timeline?start=now-1h&end=now-30m")
    assert status == 200 and not [e for e in json.loads(body)["content"] if e["job_instance"] == instance], body

    timeline = asyncio.run(get_timeline(spd.url))
    mine = [e for e in timeline["content"] if e["job_instance"] == instance]
    assert [e["msg_type"] for e in mine] == ["machine_start", "machine_result"], timeline
    spd.stop()
