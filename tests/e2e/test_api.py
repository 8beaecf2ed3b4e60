"""spd's HTTP + WebSocket API with real spd, sp_wrapper and spctl processes on 127.0.0.1."""
import asyncio
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
import websockets

from conftest import SPCTL, ApiSpd

READ = "read-token-e2e-0123456789"
OPERATE = "operate-token-e2e-0123456789"


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


# Job names are unique across the e2e files: the host lock /tmp/sp_wrapper_<job>.lock is shared
# by tests that ctest runs in parallel.
JOBS = (job("api_ok", "echo hello; echo world")
        + job("api_fail7", "echo failing; exit 7")
        + job("api_ticker", "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done")
        + job("api_sleeper", "echo ready; sleep 300"))

API_SETTINGS = f"""\
api_ws: true
api_ws_bind_addr: 127.0.0.1
api_ws_port: 0
kill_grace: 10
api_tokens:
  - {{name: reader, token: {READ}, role: read}}
  - {{name: ops, token: {OPERATE}, role: operate}}
"""


class Spd(ApiSpd):
    """A running spd with the API on (JOBS, `settings`); stderr collected by a thread."""

    def __init__(self, setup, settings=API_SETTINGS):
        setup.write_config(JOBS, settings=settings)
        super().__init__(setup)


def spctl(spd, *args, token=OPERATE, timeout=60, env_extra=None):
    env = dict(os.environ, HOME="/nonexistent", NO_COLOR="1")
    env.pop("SALTPETER_TOKEN", None)
    env.pop("SALTPETER_URL", None)
    if env_extra:
        env.update(env_extra)
    argv = [SPCTL, "--url", spd.url]
    if token:
        argv += ["--token", token]
    return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=timeout, env=env)


def http(spd, path, token=READ, method="GET", body=None):
    req = urllib.request.Request(spd.url + path, method=method, data=body)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


@pytest.fixture
def spd(setup):
    s = Spd(setup)
    yield s
    # No wrapper may outlive the test: an orphan keeps its host lock and retries its result.
    setup.wait_for(lambda: s.proc.poll() is not None or http(s, "/running")[1] == "{}", 30, "every run to end")


def test_run_now_wait_exit_codes_and_follow(spd):
    r = spctl(spd, "run-now", "api_ok", "--wait")
    assert r.returncode == 0, r.stderr
    assert re.match(r"api_ok_\d+", r.stdout)
    r = spctl(spd, "run-now", "api_fail7", "--wait")
    assert r.returncode == 7, r.stdout + r.stderr
    assert "testhost: exit 7" in r.stderr
    r = spctl(spd, "run-now", "api_ok", "--follow")
    assert r.returncode == 0, r.stderr
    assert "testhost | hello\ntesthost | world\n" in r.stdout
    r = spctl(spd, "run-now", "api_ok")
    assert r.returncode == 0 and re.fullmatch(r"api_ok_\d+(_\d+)?\n", r.stdout), r.stdout


def test_logs_follow_receives_output_while_the_job_runs(spd):
    r = spctl(spd, "run-now", "api_ticker")
    assert r.returncode == 0, r.stderr
    instance = r.stdout.strip()
    env = dict(os.environ, HOME="/nonexistent", NO_COLOR="1")
    proc = subprocess.Popen([SPCTL, "--url", spd.url, "--token", READ, "logs", "api_ticker", "--follow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first = proc.stdout.readline()
    got_first = time.monotonic()
    assert first.startswith("testhost | tick "), first
    # The run is still going when the first line arrives.
    status, body, _ = http(spd, f"/runs/{instance}")
    assert status == 200 and json.loads(body)["finished"] is False
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = [first.rstrip("\n")] + rest.splitlines()
    assert lines == [f"testhost | tick {i}" for i in range(1, 7)]
    assert time.monotonic() - got_first > 0.5  # the rest streamed in afterwards


def test_kill_wait_reports_143_and_history(spd, setup):
    r = spctl(spd, "run-now", "api_sleeper")
    instance = r.stdout.strip()
    setup.wait_for(lambda: "ready" in json.loads(http(spd, f"/runs/{instance}/output")[1])["outputs"].get("testhost", ""),
                   20, "the api_sleeper's first output")
    r = spctl(spd, "kill", "api_sleeper", "--wait")
    assert r.returncode == 0, r.stderr
    assert "testhost: exit 143" in r.stderr
    r = spctl(spd, "kill", "api_sleeper")
    assert r.returncode == 6, r.stderr  # nothing running any more
    r = spctl(spd, "history", "api_sleeper", "--json")
    runs = json.loads(r.stdout)
    assert runs[0]["instance"] == instance
    assert runs[0]["targets"]["testhost"]["retcode"] == 143
    assert runs[0]["targets"]["testhost"]["duration"] > 0
    r = spctl(spd, "history", "api_sleeper")
    assert instance in r.stdout and "testhost=143(" in r.stdout


def test_status_jobs_running_tables(spd):
    spctl(spd, "run-now", "api_ok", "--wait")
    r = spctl(spd, "status", token=READ)
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "GROUP", "SCHEDULE"]
    ok_row = next(row for row in rows if row.startswith("api_ok "))
    assert " ok " in ok_row and "@yearly" in ok_row
    r = spctl(spd, "jobs", "--json", token=READ)
    names = [j["name"] for j in json.loads(r.stdout)]
    assert names == ["api_fail7", "api_ok", "api_sleeper", "api_ticker"]
    r = spctl(spd, "running", token=READ)
    assert r.returncode == 0 and "nothing is running" in r.stdout


def test_auth_rejections_and_failures_name_their_cause(spd):
    r = spctl(spd, "status", token=None)
    assert r.returncode == 4 and "no token" in r.stderr, r.stderr
    r = spctl(spd, "run-now", "api_ok", token=READ)
    assert r.returncode == 4 and "--token" in r.stderr and "operate" in r.stderr, r.stderr
    r = spctl(spd, "status", token=None, env_extra={"SALTPETER_TOKEN": "wrong-token-xxxxxxxx"})
    assert r.returncode == 4 and "$SALTPETER_TOKEN" in r.stderr, r.stderr
    r = spctl(spd, "run-now", "api_tikcer")
    assert r.returncode == 5 and "close names: api_ticker" in r.stderr, r.stderr
    status, body, headers = http(spd, "/jobs", token=None)
    assert status == 401 and "error" in json.loads(body) and headers.get("WWW-Authenticate") == "Bearer"
    status, body, _ = http(spd, "/jobs/api_ok/run", token=READ, method="POST", body=b"{}")
    assert status == 403 and "operate" in json.loads(body)["error"]
    r = subprocess.run([SPCTL, "--url", "http://127.0.0.1:1", "status"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 3 and "http://127.0.0.1:1" in r.stderr, r.stderr


def parse_prometheus(text):
    """{name: {"type": t, "samples": {labels-tuple: value}}} from the text exposition format."""
    families, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)', line)
        assert m, f"bad sample line: {line!r}"
        name, labels = m.group(1), tuple(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        base = re.sub(r"_(bucket|sum|count)$", "", name) if re.sub(r"_(bucket|sum|count)$", "", name) in types else name
        assert base in types, f"sample {name} has no # TYPE"
        families.setdefault(name, {})[labels] = float(m.group(4))
    return families, types


def test_metrics_are_valid_prometheus_text(spd):
    spctl(spd, "run-now", "api_ok", "--wait")
    spctl(spd, "run-now", "api_fail7", "--wait")
    status, text, headers = http(spd, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples, types = parse_prometheus(text)
    assert types["saltpeter_runs_started_total"] == "counter"
    assert samples["saltpeter_runs_started_total"][(("job", "api_ok"),)] == 1
    assert samples["saltpeter_target_results_total"][(("job", "api_fail7"), ("code", "7"))] == 1
    assert samples["saltpeter_runs_finished_total"][(("job", "api_ok"), ("result", "success"))] == 1
    assert samples["saltpeter_frames_received_total"][()] > 0
    assert samples["saltpeter_bytes_received_total"][()] > 0
    assert types["saltpeter_targets_running"] == "gauge"
    assert samples["saltpeter_targets_running"][(("job", "api_sleeper"),)] == 0


async def ui_session(url, token):
    """Speaks like opsicl/saltpeter-ui: checks the connect order, subscribes, acks, runs and kills."""
    frames = []
    async with websockets.connect(url.replace("http://", "ws://") + "/ws?token=" + token, max_size=None) as ws:
        async def recv():
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            frames.append(frame)
            return frame

        first = [await recv() for _ in range(3)]
        assert first[0]["type"] == "config" and isinstance(first[0]["sp_version"], str)
        assert set(first[0]["config"]) >= {"crons", "maintenance", "serial", "saltpeter_config"}
        cron = first[0]["config"]["crons"]["api_ok"]
        for key in ("command", "targets", "target_type", "sec", "min", "hour", "dom", "mon", "dow", "year", "group"):
            assert key in cron, key
        assert first[1]["type"] == "status" and isinstance(first[1]["running"], dict)
        assert "type" not in first[2] and first[2]["timeline"] == {}

        await ws.send(json.dumps({"subscribe": ["api_ticker"]}))
        await ws.send(json.dumps({"run": "api_ticker"}))
        chunks, details = [], None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            f = await recv()
            assert "type" in f or "timeline" in f
            if f.get("type") == "output_chunk":
                assert f["cron"] == "api_ticker" and f["machine"] == "testhost"
                assert isinstance(f["chunk"], str) and isinstance(f["position"], int)
                assert isinstance(f["total_length"], int) and isinstance(f["is_complete"], bool)
                chunks.append(f)
                await ws.send(json.dumps({"ack": {"cron": "api_ticker", "machine": "testhost",
                                                  "position": f["total_length"]}}))
            elif f.get("type") == "details" and f["cron"] == "api_ticker":
                details = f["data"]
                res = details["results"].get("testhost")
                if res and res["endtime"] != "":
                    break
        assert details is not None
        for key in ("next_run", "last_run", "overlap", "targets", "results"):
            assert key in details
        res = details["results"]["testhost"]
        assert res["retcode"] == 0 and res["ret"] == ""
        assert isinstance(res["starttime"], str) and " " in res["starttime"]
        assert all(v is not None for v in res.values()) and all(v is not None for v in details.values())
        text = "".join(c["chunk"] for c in chunks)
        assert text == "".join(f"tick {i}\n" for i in range(1, 7))
        pos = 0
        for c in chunks:  # contiguous positions in UTF-16 units
            assert c["position"] == pos
            pos = c["total_length"]
        # Every tick (2 s): status first, then the subscribed job's details.
        tick = [await recv() for _ in range(2)]
        assert [f.get("type") for f in tick] == ["status", "details"]

        # getTimeline is answered from the runs spd keeps: the ticker's start and result.
        await ws.send(json.dumps({"getTimeline": {"start_date": "now-1h", "end_date": "now", "id": "tl-1"}}))
        timeline = None
        while timeline is None:
            f = await recv()
            if "timeline" in f and f["timeline"].get("id") == "tl-1":
                timeline = f["timeline"]
        mine = [e for e in timeline["content"] if e["cron"] == "api_ticker"]
        assert [e["msg_type"] for e in mine] == ["machine_start", "machine_result"]
        assert mine[1]["ret_code"] == 0 and mine[0]["job_instance"] == mine[1]["job_instance"]
        assert isinstance(timeline["serial"], float)

        await ws.send(json.dumps({"unsubscribe": ["api_ticker"]}))
        await ws.send(json.dumps({"subscribe": ["api_sleeper"]}))
        await ws.send(json.dumps({"run": "api_sleeper"}))
        instance = None
        while instance is None:
            f = await recv()
            if f.get("type") == "status":
                instance = next((i for i, r in f["running"].items() if r["name"] == "api_sleeper"), None)
        await ws.send(json.dumps({"killMachine": {"cron": "api_sleeper", "machine": "testhost", "job_instance": instance}}))
        deadline = time.monotonic() + 30
        killed = False
        while time.monotonic() < deadline and not killed:
            f = await recv()
            if f.get("type") == "details" and f["cron"] == "api_sleeper":
                killed = f["data"]["results"].get("testhost", {}).get("retcode") == 143
        assert killed
        await ws.send(json.dumps({"run": "api_sleeper"}))
        await ws.send(json.dumps({"killCron": "api_sleeper"}))  # may race the start: then retried below
        deadline = time.monotonic() + 30
        done = False
        while time.monotonic() < deadline and not done:
            f = await recv()
            if f.get("type") == "status":
                if any(r["name"] == "api_sleeper" for r in f["running"].values()):
                    await ws.send(json.dumps({"killCron": "api_sleeper"}))
                else:
                    done = True
        assert done
    return frames


def test_websocket_client_like_the_original_ui(spd):
    frames = asyncio.run(ui_session(spd.url, OPERATE))
    assert len(frames) > 10


def test_websocket_rejects_missing_token_and_read_role_cannot_run(spd):
    async def no_token():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            async with websockets.connect(spd.url.replace("http://", "ws://") + "/ws"):
                pass
        assert e.value.status_code == 401

    async def read_role():
        async with websockets.connect(spd.url.replace("http://", "ws://") + "/ws?token=" + READ) as ws:
            await ws.send(json.dumps({"run": "api_ok"}))
            await asyncio.sleep(1)
        status, body, _ = http(spd, "/jobs/api_ok/runs")
        assert json.loads(body) == []

    asyncio.run(no_token())
    asyncio.run(read_role())


def test_no_tokens_binds_localhost_and_says_so(setup):
    s = Spd(setup, settings="api_ws: true\napi_ws_bind_addr: 0.0.0.0\napi_ws_port: 0\n")
    assert "127.0.0.1" in s.url
    assert any("no api_tokens configured" in line for line in s.lines)
    r = spctl(s, "status", token=None)
    assert r.returncode == 0, r.stderr


def test_spctl_reads_url_and_token_file_from_its_config_file(spd, setup):
    home = setup.scratch / "home"
    (home / ".config/saltpeter").mkdir(parents=True)
    token_file = setup.scratch / "token"
    token_file.write_text(OPERATE + "\n")
    token_file.chmod(0o600)
    (home / ".config/saltpeter/spctl.yaml").write_text(f"url: {spd.url}\ntoken_file: {token_file}\n")
    env = dict(os.environ, HOME=str(home), NO_COLOR="1")
    env.pop("SALTPETER_URL", None)
    env.pop("SALTPETER_TOKEN", None)
    env.pop("XDG_CONFIG_HOME", None)
    r = subprocess.run([SPCTL, "run-now", "api_ok", "--wait", "--json"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)
    assert run["job"] == "api_ok" and run["finished"] and run["targets"]["testhost"]["retcode"] == 0
    # The environment wins over the file: a wrong token there is named as the culprit.
    env["SALTPETER_TOKEN"] = "wrong-token-xxxxxxxx"
    r = subprocess.run([SPCTL, "jobs"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 4 and "$SALTPETER_TOKEN" in r.stderr, r.stderr


def test_https_with_tls_cert_and_key(setup):
    cert, key = setup.scratch / "api.crt", setup.scratch / "api.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    settings = API_SETTINGS + f"tls_cert: {cert}\ntls_key: {key}\n"
    setup.write_config(JOBS, settings=settings)
    proc = setup.start_spd()
    lines = []
    threading.Thread(target=lambda: [lines.append(l) for l in proc.stderr], daemon=True).start()

    def port():
        for line in list(lines):
            m = re.search(r"API listening on https://127\.0\.0\.1:(\d+)", line)
            if m:
                return int(m.group(1))
        return None

    url = f"https://127.0.0.1:{setup.wait_for(port, 20, 'the https API port')}"
    home = setup.scratch / "home"
    (home / ".config/saltpeter").mkdir(parents=True)
    (home / ".config/saltpeter/spctl.yaml").write_text(f"url: {url}\ntoken: {READ}\nca_file: {cert}\n")
    env = dict(os.environ, HOME=str(home), NO_COLOR="1")
    for k in ("SALTPETER_URL", "SALTPETER_TOKEN", "XDG_CONFIG_HOME"):
        env.pop(k, None)
    r = subprocess.run([SPCTL, "jobs", "--json"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert [j["name"] for j in json.loads(r.stdout)][0] == "api_fail7"
    # Without the CA the certificate is refused, and the message names the URL.
    (home / ".config/saltpeter/spctl.yaml").write_text(f"url: {url}\ntoken: {READ}\n")
    r = subprocess.run([SPCTL, "jobs"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 3 and url in r.stderr, r.stderr
    # Plain HTTP on the TLS port gets nothing useful.
    with pytest.raises(Exception):
        urllib.request.urlopen(url.replace("https://", "http://") + "/healthz", timeout=5).read()


def test_cors_origins_from_the_config(setup):
    s = Spd(setup, settings=API_SETTINGS + "cors_origins: ['http://ui.example']\n")

    def get(origin, method="GET"):
        req = urllib.request.Request(s.url + "/jobs", method=method, headers={"Origin": origin,
                                                                               "Authorization": "Bearer " + READ})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers)

    status, headers = get("http://ui.example")
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "http://ui.example"
    status, headers = get("http://evil.example")
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    status, headers = get("http://ui.example", "OPTIONS")
    assert status == 204 and "POST" in headers["Access-Control-Allow-Methods"]

    async def ws_from(origin):
        async with websockets.connect(s.url.replace("http://", "ws://") + "/ws?token=" + READ, origin=origin) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))["type"]

    assert asyncio.run(ws_from("http://ui.example")) == "config"
    with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
        asyncio.run(ws_from("http://evil.example"))
    assert e.value.status_code == 403
