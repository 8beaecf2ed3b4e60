"""History, logs and the timeline from the durable RunStore (issue 8): runs in state.db (more than
the 20 per job spd keeps in memory, from before a start) are listed by GET /jobs/{name}/runs,
served by GET /runs/{instance} and /runs/{instance}/output (with spd's verdict text), shown by
`spctl history` and `spctl logs`, and on GET /timeline and the UI's getTimeline. The runs are
written into state.db here, so this file does not depend on the tracker writing them;
test_store_history_restart.py checks that path end to end."""
import asyncio
import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request

import websockets

from conftest import SPCTL, ApiSpd

TOKEN = "hist-token-e2e-0123456789"

# Job names are unique across the e2e files (the wrapper's host lock is per job name).
JOBS = """
hist_exit3:
  command: "echo before restart; echo second line; exit 3"
  targets: testhost
  target_type: glob
  schedule: '@yearly'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
"""

SETTINGS = f"""\
api_ws: true
api_ws_bind_addr: 127.0.0.1
api_ws_port: 0
api_tokens:
  - {{name: ops, token: {TOKEN}, role: operate}}
"""


class Spd(ApiSpd):
    """spd with its stderr drained by a thread; url is its API once it listens."""

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        assert self.proc.returncode == 0, "".join(self.lines)


def http(spd, path):
    req = urllib.request.Request(spd.url + path)
    req.add_header("Authorization", "Bearer " + TOKEN)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def spctl(spd, *args):
    env = dict(os.environ, HOME="/nonexistent", NO_COLOR="1")
    env.pop("SALTPETER_TOKEN", None)
    env.pop("SALTPETER_URL", None)
    return subprocess.run([SPCTL, "--url", spd.url, "--token", TOKEN, *args], capture_output=True, text=True,
                          timeout=60, env=env)


async def get_timeline(url):
    async with websockets.connect(url.replace("http://", "ws://") + "/ws?token=" + TOKEN, max_size=None) as ws:
        await ws.send(json.dumps({"getTimeline": {"start_date": "now-1h", "end_date": "now", "id": "hist-1"}}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if "timeline" in frame and frame["timeline"].get("id") == "hist-1":
                return frame["timeline"]


def seed_runs(db_path, job, count, now):
    """Writes `count` finished runs of `job` into state.db the way the store lays them out (schema
    2), one minute apart, the newest 10 minutes ago; the newest ends with spd's 253 verdict."""
    import sqlite3

    con = sqlite3.connect(db_path)
    verdict = "[SALTPETER ERROR: Job lost connection - no heartbeat for 15 seconds]"
    instances = []
    for i in range(count):
        started = int((now - 600 - 60 * (count - 1 - i)) * 1_000_000)
        ended = started + 5_000_000
        instance = f"{job}_{started // 1_000_000}"
        last = i == count - 1
        code = 253 if last else i % 3
        con.execute("INSERT INTO runs(instance, job, grp, trigger, scheduled, started, ended, status) "
                    "VALUES(?, ?, 'jobs', 'schedule', ?, ?, ?, ?)",
                    (instance, job, started // 1_000_000, started, ended, "success" if code == 0 else "failure"))
        notes = json.dumps(["heartbeat lost", verdict] if last else [])
        cur = con.execute("INSERT INTO targets(instance, machine, state, started, ended, retcode, wrapper_version, "
                          "last_heartbeat, notes, spd_verdict, last_seq, output_bytes, head_bytes) "
                          "VALUES(?, 'testhost', 'finished', ?, ?, ?, '0.1.0', NULL, ?, ?, 1, ?, ?)",
                          (instance, started + 1000, ended, code, notes, 1 if last else 0, 11, 11))
        con.execute("INSERT INTO output(target_id, head, data) VALUES(?, 1, ?)",
                    (cur.lastrowid, f"run {i:02d} out".encode()))
        instances.append(instance)
    con.commit()
    con.close()
    return instances, verdict


def test_runs_in_state_db_beyond_the_20_in_memory_are_served(setup):
    """Passes without the tracker's store wiring: the runs are written into state.db directly."""
    import time

    jobs = JOBS.replace("hist_exit3", "hist_seeded")
    setup.write_config(jobs, settings=SETTINGS)
    spd = Spd(setup)  # creates state.db with the current schema
    spd.stop()
    instances, verdict = seed_runs(str(setup.logdir / "state.db"), "hist_seeded", 25, time.time())

    spd = Spd(setup)
    status, body = http(spd, "/jobs/hist_seeded/runs?limit=30")
    assert status == 200, body
    assert [r["instance"] for r in json.loads(body)] == instances[::-1], body
    status, body = http(spd, "/jobs/hist_seeded/runs")
    assert [r["instance"] for r in json.loads(body)] == instances[::-1][:20]
    newest, oldest = instances[-1], instances[0]
    status, body = http(spd, f"/runs/{oldest}/output")
    assert status == 200 and json.loads(body)["outputs"] == {"testhost": "run 00 out"}, body
    # spd's verdict text follows the stored output, as in the live view.
    status, body = http(spd, f"/runs/{newest}/output")
    assert json.loads(body)["outputs"]["testhost"] == f"run 24 out\n{verdict}\n", body
    run = json.loads(http(spd, f"/runs/{newest}")[1])
    assert run["targets"]["testhost"]["retcode"] == 253 and run["finished"] is True
    assert run["targets"]["testhost"]["notes"] == ["heartbeat lost", verdict]

    r = spctl(spd, "history", "hist_seeded", "--limit", "25")
    assert r.returncode == 0, r.stderr
    assert oldest in r.stdout and "testhost=253(5.0s)" in r.stdout, r.stdout
    r = spctl(spd, "logs", "hist_seeded")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"testhost | run 24 out\ntesthost | {verdict}\n", r.stdout

    status, body = http(spd, "/timeline?start=now-2h&end=now")
    entries = [e for e in json.loads(body)["content"] if e["cron"] == "hist_seeded"]
    assert len(entries) == 50, body
    assert entries[-1] == {"cron": "hist_seeded", "timestamp": entries[-1]["timestamp"], "ret_code": 253,
                           "msg_type": "machine_result", "job_instance": newest}
    timeline = asyncio.run(get_timeline(spd.url))
    assert len([e for e in timeline["content"] if e["cron"] == "hist_seeded"]) == 50
    spd.stop()
