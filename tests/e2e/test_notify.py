"""Webhook notifications (issue 8) through the real spd and sp_wrapper: a recording HTTP server on
127.0.0.1 receives the POSTs. Failure and recovered payloads, the saltpeter_config default, retries
after 500s, an unreachable webhook (logged, counted in /metrics, spd keeps running jobs) and a
missed fire time at start-up."""
import base64
import json
import re
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ApiSpd


class Recorder:
    """An HTTP server recording every POST; `script[path]` lists the statuses to answer in turn
    (the last one repeats; 200 when the path has no script)."""

    def __init__(self):
        self.posts = []
        self.script = {}
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                path = self.path.split("?")[0]
                with recorder.lock:
                    recorder.posts.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                           "time": time.monotonic()})
                    statuses = recorder.script.get(path, [200])
                    status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def to(self, path):
        with self.lock:
            return [p for p in self.posts if p["path"].split("?")[0] == path]

    def documents(self, path):
        return [json.loads(p["body"]) for p in self.to(path)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks():
    r = Recorder()
    yield r
    r.close()


class Spd(ApiSpd):
    """spd with the API on (no tokens: 127.0.0.1 only); stderr collected by a thread."""

    def __init__(self, setup, jobs, settings):
        setup.write_config(jobs, settings="api_ws: true\napi_ws_bind_addr: 127.0.0.1\napi_ws_port: 0\n" + settings)
        self.setup = setup
        super().__init__(setup)

    def run(self, job):
        req = urllib.request.Request(f"{self.url}/jobs/{job}/run", method="POST", data=b"{}")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 202
            return json.loads(r.read())["instance"]

    def metric(self, name, event):
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as r:
            text = r.read().decode()
        m = re.search(rf'^{name}{{event="{event}"}} (\S+)$', text, re.M)
        return float(m.group(1)) if m else None


def job(name, command, extra=""):
    return f"""
{name}:
  command: "{command}"
  targets: testhost
  schedule: '@yearly'
{extra}"""


def test_failure_and_recovered_payloads_and_the_default_webhook(setup, hooks):
    flag = setup.scratch / "healthy"
    jobs = (job("nt_flip", f"test -f {flag} && echo all fine || {{ echo broken here; exit 3; }}",
                f"  notify: {{on: [failure, recovered], webhook: '{hooks.url('/flip?token=s3cret')}'}}\n")
            + job("nt_plain", "echo plain failure; exit 5"))
    default_hook = hooks.url("/default").replace("http://", "http://alice:pw@")  # sent as Basic auth
    spd = Spd(setup, jobs, f"notify: {{on: [failure], webhook: '{default_hook}'}}\n")

    first = spd.run("nt_flip")
    setup.wait_for(lambda: hooks.to("/flip"), 30, "the failure POST")
    post = hooks.to("/flip")[0]
    assert post["path"] == "/flip?token=s3cret"
    assert post["headers"]["Content-Type"] == "application/json"
    assert re.fullmatch(r"saltpeter/\d+\.\d+\.\d+.*", post["headers"]["User-Agent"])
    doc = json.loads(post["body"])
    assert doc["event"] == "failure"
    assert doc["job"] == "nt_flip"
    assert doc["group"] == "jobs"
    assert doc["instance"] == first
    assert doc["trigger"] == "run-now"
    assert doc["scheduled"] is None
    assert doc["started"].endswith("+00:00") and doc["ended"].endswith("+00:00")
    assert doc["ended"] >= doc["started"]
    assert doc["status"] == "failure" and doc["success"] is False
    assert doc["targets_total"] == 1 and doc["targets_failed"] == 1
    (target,) = doc["targets"]
    assert target["machine"] == "testhost"
    assert target["retcode"] == 3
    assert "3" in target["meaning"]
    assert "broken here" in target["output_tail"]
    assert doc["saltpeter"]["host"] and re.fullmatch(r"\d+\.\d+\.\d+.*", doc["saltpeter"]["version"])

    # The job without notify uses saltpeter_config's default.
    plain = spd.run("nt_plain")
    setup.wait_for(lambda: hooks.to("/default"), 30, "the default webhook's POST")
    (d,) = hooks.documents("/default")
    assert hooks.to("/default")[0]["headers"]["Authorization"] == "Basic " + base64.b64encode(b"alice:pw").decode()
    assert "Authorization" not in hooks.to("/flip")[0]["headers"]
    assert (d["event"], d["job"], d["instance"], d["targets"][0]["retcode"]) == ("failure", "nt_plain", plain, 5)

    # Success after a failure: `recovered` (success itself is not subscribed).
    flag.write_text("")
    second = spd.run("nt_flip")
    setup.wait_for(lambda: len(hooks.to("/flip")) >= 2, 30, "the recovered POST")
    doc = hooks.documents("/flip")[1]
    assert (doc["event"], doc["instance"], doc["status"], doc["success"]) == ("recovered", second, "success", True)
    assert doc["targets"][0]["retcode"] == 0 and "all fine" in doc["targets"][0]["output_tail"]
    # A second success is neither failure nor recovered: nothing more.
    spd.run("nt_flip")
    setup.wait_for(lambda: setup.job_log("nt_flip").count("###### Finished nt_flip") >= 3, 30, "the third run")
    time.sleep(1)
    assert len(hooks.to("/flip")) == 2
    assert spd.metric("saltpeter_notifications_sent_total", "failure") == 2
    assert spd.metric("saltpeter_notifications_sent_total", "recovered") == 1
    # Query strings (tokens) never reach the log.
    assert "s3cret" not in spd.log() and "alice" not in spd.log()
    assert f"127.0.0.1:{hooks.port}/flip" in spd.log()


def test_webhook_answering_500_twice_gets_the_payload_on_the_third_try(setup, hooks):
    hooks.script["/flaky"] = [500, 500, 200]
    jobs = job("nt_retry", "echo nope; exit 2", f"  notify: {{on: [failure], webhook: '{hooks.url('/flaky')}'}}\n")
    spd = Spd(setup, jobs, "")
    instance = spd.run("nt_retry")
    setup.wait_for(lambda: len(hooks.to("/flaky")) >= 3, 30, "three attempts")
    posts = hooks.to("/flaky")
    assert posts[0]["body"] == posts[1]["body"] == posts[2]["body"]
    assert json.loads(posts[2]["body"])["instance"] == instance
    # Exponential backoff: about 1 s, then about 2 s.
    assert posts[1]["time"] - posts[0]["time"] >= 0.9
    assert posts[2]["time"] - posts[1]["time"] >= 1.9
    setup.wait_for(lambda: spd.metric("saltpeter_notifications_sent_total", "failure") == 1, 10, "sent counted")
    assert spd.metric("saltpeter_notifications_retries_total", "failure") == 2
    assert spd.metric("saltpeter_notifications_failed_total", "failure") == 0
    assert "attempt 1 failed (HTTP 500); retrying in 1000 ms" in spd.log()
    time.sleep(1)
    assert len(hooks.to("/flaky")) == 3


def test_unreachable_webhook_is_logged_and_counted_and_spd_keeps_running_jobs(setup):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    jobs = (job("nt_dead", "echo bad; exit 4",
                f"  notify: {{on: [failure, success], webhook: 'http://user:pw@127.0.0.1:{dead}/hook?k=zq9tok'}}\n")
            + job("nt_alive", "echo still running"))
    spd = Spd(setup, jobs, "")
    spd.run("nt_dead")
    setup.wait_for(lambda: "attempt 1 failed" in spd.log(), 30, "the first failed attempt")
    # While the worker backs off, runs go on.
    for n in (1, 2):
        spd.run("nt_alive")
        setup.wait_for(lambda: setup.job_log("nt_alive").count("###### Finished nt_alive") >= n, 30, f"run {n}")
    assert spd.metric("saltpeter_notifications_failed_total", "failure") == 0  # still retrying
    # Five attempts: 1 + 2 + 4 + 8 s of backoff.
    setup.wait_for(lambda: spd.metric("saltpeter_notifications_failed_total", "failure") == 1, 40,
                   "the failure counted in /metrics")
    assert spd.metric("saltpeter_notifications_retries_total", "failure") == 4
    assert spd.metric("saltpeter_notifications_sent_total", "failure") == 0
    log = spd.log()
    assert f"to http://127.0.0.1:{dead}/hook failed after 5 attempt(s): cannot reach webhook" in log
    assert "zq9tok" not in log and "user:pw" not in log
    assert spd.proc.poll() is None
    spd.run("nt_alive")
    setup.wait_for(lambda: setup.job_log("nt_alive").count("###### Finished nt_alive") >= 3, 30, "a run after that")


def test_missed_fire_times_at_start_post_missed(setup, hooks):
    jobs = job("nt_missed", "echo hi", f"  notify: {{on: [missed], webhook: '{hooks.url('/missed')}'}}\n").replace(
        "'@yearly'", "'0 0 * * * * *'")
    last = int(time.time()) // 3600 * 3600 - 3 * 3600 + 1  # three hourly fire times since
    (setup.logdir / "schedule-state.json").write_text(json.dumps({"version": 1, "jobs": {"nt_missed": {"last_fire": last}}}))
    Spd(setup, jobs, "")
    setup.wait_for(lambda: hooks.to("/missed"), 30, "the missed POST")
    (doc,) = hooks.documents("/missed")
    assert doc["event"] == "missed" and doc["job"] == "nt_missed" and doc["group"] == "jobs"
    assert doc["missed"] in (3, 4) and doc["catch_up"] is False  # 4 when an hour turns meanwhile
    assert "misfire: skip, no catch-up run" in doc["reason"]
    assert doc["scheduled"].endswith(":00:00+00:00")


def test_run_once_delivers_before_spd_exits(setup, hooks):
    setup.write_config(job("nt_once", "echo once; exit 9", f"  notify: {{on: [failure], webhook: '{hooks.url('/once')}'}}\n"))
    proc, _ = setup.run_once("nt_once")
    assert proc.returncode == 9, proc.stderr
    # spd --run-once stops right after the run: the stop drains the queue first.
    (doc,) = hooks.documents("/once")
    assert (doc["event"], doc["job"], doc["trigger"], doc["targets"][0]["retcode"]) == ("failure", "nt_once", "run-now", 9)
