"""Hostile peers on the machines port: malformed JSON, binary frames, a 64 MiB frame, 10,000
connections that never send a frame, frames for other instances, wrong tokens. spd must stay up,
keep serving a good wrapper, keep its memory bounded and log each problem once per peer."""
import asyncio
import os
import re

import websockets

from conftest import SpdRun, free_port, raise_nofile, stored_outputs

IDLE_CONNECTIONS = 10_000
GOOD_LINES = 2000
# Unique per test process: the wrapper host lock in /tmp is shared with other checkouts' tests.
GOOD = f"fgood{os.getpid()}"


def envelope(kind, instance, **extra):
    msg = {"type": kind, "job_name": instance.rsplit("_", 1)[0], "job_instance": instance, "machine": "testhost",
           "timestamp": "2026-11-28T04:38:47.740437+00:00"}
    msg.update(extra)
    import json
    return json.dumps(msg)


async def hostile_socket(port, frames, binary=False):
    """Sends `frames` on one WebSocket, reads whatever comes back for a moment, returns the local
    port (how spd's log names the peer) and the close code if spd closed it."""
    ws = await websockets.connect(f"ws://127.0.0.1:{port}", max_size=None, compression=None, open_timeout=30,
                                  ping_interval=None)
    local_port = ws.local_address[1]
    code = None
    try:
        for f in frames:
            await ws.send(f.encode() if binary else f)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 1.0)
        except asyncio.TimeoutError:
            pass
    except websockets.ConnectionClosed as e:
        code = e.rcvd.code if getattr(e, "rcvd", None) is not None else 1006
    finally:
        await ws.close()
    return local_port, code


async def idle_connections(port, count):
    """`count` WebSocket handshakes (raw HTTP upgrade, to stay cheap) that then never send a frame."""
    writers = []
    request = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    upgraded = 0
    sem = asyncio.Semaphore(500)

    async def one():
        nonlocal upgraded
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            if head.startswith(b"HTTP/1.1 101"):
                upgraded += 1
            writers.append(writer)

    await asyncio.gather(*(one() for _ in range(count)))
    return writers, upgraded


def test_hostile_peers_do_not_hurt_spd_or_the_good_wrapper(setup):
    assert raise_nofile(IDLE_CONNECTIONS + 2000) >= IDLE_CONNECTIONS + 1000
    port = free_port()
    setup.write_config(f"""
{GOOD}:
  command: "i=0; while [ $i -lt {GOOD_LINES} ]; do i=$((i+1)); echo good line $i; done; sleep 2; exit 4"
  targets: testhost
  schedule: '*/4 * * * * ? *'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
""", settings=f"machines_ws_port: {port}\nheartbeat_timeout: 15\n")
    spd = SpdRun(setup, [], limit_nofile=IDLE_CONNECTIONS + 2000)
    setup.wait_for(lambda: "machine hub listening" in spd.stderr(), 20, "the machines port")
    baseline_kib = spd.rss_kib()
    # A first good run shows the instance naming and that wrappers get through.
    m = setup.wait_for(lambda: re.search(rf"({GOOD}_\d+)", setup.job_log(GOOD)), 20, "a good run")
    live_instance = m.group(1)

    async def attack():
        idle, upgraded = await idle_connections(port, IDLE_CONNECTIONS)
        results = {}
        results["malformed"] = await hostile_socket(port, ["{not json"] * 50 + ['{"type": 5}'] * 50)
        results["binary"] = await hostile_socket(port, [envelope("heartbeat", live_instance)] * 20, binary=True)
        results["other_instance"] = await hostile_socket(port, [
            envelope("connect", "nosuch_1795000000", proto=2, next_seq=0, token="0" * 64)] + [
            envelope("output", "nosuch_1795000000", stream="stdout", data="x\n", seq=i) for i in range(50)] + [
            envelope("complete", "nosuch_1795000000", retcode=0, seq=50)])
        results["wrong_token"] = await hostile_socket(port, [
            envelope("connect", live_instance, proto=2, next_seq=0, token="f" * 64)] + [
            envelope("output", live_instance, stream="stdout", data="forged\n", seq=i) for i in range(50)] + [
            envelope("complete", live_instance, retcode=0, seq=50)])
        results["huge"] = await hostile_socket(port, [envelope("output", live_instance, stream="stdout",
                                                               data="A" * (64 << 20), seq=0)])
        return idle, upgraded, results

    loop = asyncio.new_event_loop()
    try:
        idle, upgraded, results = loop.run_until_complete(attack())
        assert upgraded == IDLE_CONNECTIONS, f"only {upgraded} of {IDLE_CONNECTIONS} idle handshakes answered"
        rss_with_idle = spd.rss_kib()
        # With every idle connection still open, good runs keep completing with their output.
        finished_before = setup.job_log(GOOD).count(f"###### Finished {GOOD}_")
        setup.wait_for(lambda: setup.job_log(GOOD).count(f"###### Finished {GOOD}_") >= finished_before + 2, 40,
                       "two more good runs while 10,000 idle peers are connected")
        assert spd.proc.poll() is None, "spd died"
        still_open = sum(1 for w in idle if not w.is_closing())
        for w in idle:
            w.close()
    finally:
        loop.close()

    peak_kib = spd.rss_kib("VmHWM")
    spd.proc.terminate()
    spd.wait(20)
    err = spd.stderr()
    expected = "".join(f"good line {i}\n" for i in range(1, GOOD_LINES + 1)).encode()
    records = stored_outputs(setup.logdir / f"{GOOD}.log")
    assert len(records) >= 3
    for code, body in records:
        assert (code, body) == (4, expected), (code, len(body))
    assert b"forged" not in (setup.logdir / f"{GOOD}.log").read_bytes()
    assert not (setup.logdir / "nosuch.log").exists()

    # Each hostile socket is logged, and only once per kind of problem however many frames it sent.
    for kind, (local_port, close_code) in results.items():
        lines = [l for l in err.splitlines() if re.search(rf"\(socket \d+, [^)]*:{local_port}\)", l)]
        assert lines, f"{kind}: nothing logged for the peer on port {local_port}"
        kinds = [re.sub(r"\d+", "N", l.split("machine hub: ", 1)[1]) for l in lines]
        assert len(kinds) == len(set(kinds)), f"{kind}: a problem logged more than once: {lines}"
        assert len(lines) <= 3, f"{kind}: {len(lines)} lines for one peer: {lines}"
    # The 64 MiB frame: refused at its header (1009), or the socket reset while we still wrote.
    assert results["huge"][1] in (1009, 1006), results["huge"]
    assert "frame larger than" in err

    # Memory: 10,000 idle sockets and a refused 64 MiB frame may cost some, but stay bounded.
    print(f"spd RSS: baseline {baseline_kib} KiB, with {IDLE_CONNECTIONS} idle peers {rss_with_idle} KiB, "
          f"peak {peak_kib} KiB; idle sockets still open after the good runs: {still_open}")
    assert rss_with_idle - baseline_kib < 200 * 1024, (baseline_kib, rss_with_idle)
    assert peak_kib < 400 * 1024, peak_kib
