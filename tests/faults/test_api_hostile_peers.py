"""Hostile peers on the API port (issue 10): slowloris (200 connections sending their headers one
byte at a time and never finishing, /ws upgrades that stall), oversized headers, a garbage request
line, a body that never arrives. spd must stay up, keep answering a good client promptly, close
each slow connection after its 5 s limit, keep its memory bounded and log each problem once per
peer; cross-site browser pages may not drive a token-less spd (/ws upgrade or POST: 403)."""
import asyncio
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request

import websockets

from conftest import SpdRun

SLOW_PEERS = 200
WS_STALLS = 20
LIMIT_S = 5.0  # k_open_handshake_timeout_ms in api_server.cpp
JOB = f"apislow{os.getpid()}"
SETTINGS = "api_ws: true\napi_ws_bind_addr: 127.0.0.1\napi_ws_port: 0\n"
JOBS = f"""
{JOB}:
  command: "echo hi"
  targets: testhost
  target_type: glob
  schedule: '@yearly'
"""


def start(setup):
    setup.write_config(JOBS, settings=SETTINGS)
    spd = SpdRun(setup, [])
    m = setup.wait_for(lambda: re.search(r"API listening on http://127\.0\.0\.1:(\d+)", spd.stderr()), 20,
                       "the API port in spd's log")
    return spd, int(m.group(1))


def peer_lines(err, port):
    """spd's log lines that name the peer whose local port is `port`."""
    return [l for l in err.splitlines() if re.search(rf"[:\]]{port}\b", l) and "API" in l]


async def hostile(port, payload, interval, label, results, read_limit=30.0):
    """Sends `payload` (bytes) `interval` s apart one byte at a time (all at once for interval 0),
    then keeps the socket open and waits for spd to answer or close it. Records (label, local port,
    seconds until the close, what spd answered)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    local = writer.get_extra_info("sockname")[1]
    t0 = time.monotonic()

    async def feed():
        try:
            if interval == 0:
                writer.write(payload)
                await writer.drain()
            else:
                for i in range(len(payload)):
                    writer.write(payload[i:i + 1])
                    await writer.drain()
                    await asyncio.sleep(interval)
            await asyncio.sleep(3600)
        except (ConnectionError, OSError):
            pass

    feeder = asyncio.ensure_future(feed())
    answer = b""
    closed_after = None
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), read_limit)
            if not chunk:
                break
            answer += chunk
        closed_after = time.monotonic() - t0
    except (ConnectionError, OSError):
        closed_after = time.monotonic() - t0
    except asyncio.TimeoutError:
        closed_after = None
    finally:
        feeder.cancel()
        writer.close()
    results.append((label, local, closed_after, answer))


class GoodClient(threading.Thread):
    """GET /jobs every 0.2 s; records each latency (or the error)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/jobs"
        self.latencies = []
        self.errors = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as r:
                    body = json.loads(r.read())
                    assert any(j["name"] == JOB for j in body)
                self.latencies.append(time.monotonic() - t0)
            except Exception as e:  # noqa: BLE001 - recorded and asserted on
                self.errors.append(repr(e))
            time.sleep(0.2)


def test_slowloris_and_malformed_requests_on_the_api(setup):
    spd, port = start(setup)
    good = GoodClient(port)
    good.start()
    setup.wait_for(lambda: len(good.latencies) >= 3, 20, "the good client's first answers")
    baseline_kib = spd.rss_kib()

    slow_headers = (b"GET /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Pad: " + b"a" * 4000)
    ws_upgrade = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n").encode()
    results = []

    async def attack():
        tasks = [hostile(port, slow_headers, 0.1, "slow_headers", results) for _ in range(SLOW_PEERS)]
        # /ws upgrades that stall: all headers but the final empty line, or one byte a second.
        tasks += [hostile(port, ws_upgrade, 0, "ws_stall", results) for _ in range(WS_STALLS // 2)]
        tasks += [hostile(port, ws_upgrade + b"\r\n", 1.0, "ws_trickle", results) for _ in range(WS_STALLS // 2)]
        # A body announced and never sent.
        tasks.append(hostile(port, f"POST /jobs/{JOB}/run HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode(),
                             0, "body_stall", results))
        # A TLS hello on the plain port: no line end ever comes, so it is a slow client too.
        tasks.append(hostile(port, bytes.fromhex("160301002a010000260303") + b"\x00" * 40, 0, "tls_hello", results))
        # Answered at once: oversized headers, a garbage request line, a body larger than the limit.
        tasks.append(hostile(port, b"GET /jobs HTTP/1.1\r\nX-Big: " + b"b" * 200_000 + b"\r\n\r\n", 0, "huge_headers",
                             results))
        tasks.append(hostile(port, b"\x01\x02GARBAGE \xff\xfe\r\n\r\n", 0, "garbage", results))
        tasks.append(hostile(port, b"GET /jobs HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 0, "huge_body", results))
        await asyncio.gather(*tasks)

    t0 = time.monotonic()
    asyncio.run(attack())
    attack_s = time.monotonic() - t0
    rss_after_kib = spd.rss_kib()
    # The good client kept going through the attack.
    good_during = list(good.latencies)
    time.sleep(0.5)
    good.stop.set()
    good.join(15)
    assert spd.proc.poll() is None, "spd died"
    peak_kib = spd.rss_kib("VmHWM")
    spd.proc.terminate()
    spd.wait(20)
    err = spd.stderr()

    by_label = {}
    for label, local, closed_after, answer in results:
        by_label.setdefault(label, []).append((local, closed_after, answer))
    assert len(by_label["slow_headers"]) == SLOW_PEERS
    # Slow peers: closed by spd after the 5 s limit (not before, not much later), never answered.
    for label in ("slow_headers", "ws_stall", "ws_trickle", "body_stall", "tls_hello"):
        for local, closed_after, answer in by_label[label]:
            assert closed_after is not None, f"{label}: peer {local} still open after 30 s"
            assert LIMIT_S - 0.5 <= closed_after <= LIMIT_S + 3, (label, local, closed_after)
            assert answer == b"", (label, answer[:200])
            lines = peer_lines(err, local)
            assert len(lines) == 1, f"{label}: peer {local} logged {len(lines)} times: {lines}"
            assert "slow client" in lines[0], lines[0]
    # Malformed requests: an HTTP error at once, the connection closed, one log line naming the peer.
    for label, status in (("huge_headers", b"431"), ("garbage", b"400"), ("huge_body", b"400")):
        [(local, closed_after, answer)] = by_label[label]
        assert closed_after is not None and closed_after < 3, (label, closed_after)
        assert answer.startswith(b"HTTP/1.1 ") and answer[9:12] == status, (label, answer[:200])
        lines = peer_lines(err, local)
        assert len(lines) == 1, f"{label}: peer {local} logged {len(lines)} times: {lines}"

    # The good client: answered throughout, promptly.
    during = [l for l in good_during]
    assert not good.errors, good.errors[:5]
    assert len(during) >= attack_s / 0.5, (len(during), attack_s)
    assert max(during) < 1.0, sorted(during)[-5:]
    print(f"spd RSS: baseline {baseline_kib} KiB, after {SLOW_PEERS + WS_STALLS} slow peers {rss_after_kib} KiB, "
          f"peak {peak_kib} KiB; good client: {len(during)} answers, max {max(during) * 1000:.0f} ms")
    assert peak_kib - baseline_kib < 64 * 1024, (baseline_kib, peak_kib)


def test_cross_site_pages_cannot_drive_a_tokenless_spd(setup):
    spd, port = start(setup)
    ws_url = f"ws://127.0.0.1:{port}/ws"

    async def ws_first_type(origin):
        kwargs = {"origin": origin} if origin else {}
        async with websockets.connect(ws_url, open_timeout=10, **kwargs) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))["type"]

    async def ws_status(origin):
        try:
            await ws_first_type(origin)
            return 101
        except websockets.exceptions.InvalidStatusCode as e:
            return e.status_code

    # Non-browser clients (no Origin) and the API's own origin may.
    assert asyncio.run(ws_first_type(None)) == "config"
    assert asyncio.run(ws_first_type(f"http://127.0.0.1:{port}")) == "config"
    assert asyncio.run(ws_first_type(f"http://localhost:{port}")) == "config"
    # Any other site may not: 403.
    for origin in ("http://evil.example", f"http://127.0.0.1:{port + 1}", "null", f"http://localhost.evil.example:{port}"):
        assert asyncio.run(ws_status(origin)) == 403, origin

    def post(origin):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/jobs/{JOB}/run", method="POST", data=b"",
                                     headers={"Origin": origin} if origin else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    status, body = post("http://evil.example")
    assert status == 403 and "not this API's own" in body and "cors_origins" in body, (status, body)
    status, body = post(None)
    assert status == 202, body
    setup.wait_for(lambda: f"###### Finished {JOB}_" in setup.job_log(JOB), 30, "the run started without Origin")
    time.sleep(0.5)
    assert setup.job_log(JOB).count(f"###### Finished {JOB}_") == 1  # the refused POST started nothing
    spd.proc.terminate()
    spd.wait(20)
    err = spd.stderr()
    assert "origin 'http://evil.example' is not this API's own" in err
    assert err.count("upgrade refused") == 4, err
