"""Network faults between sp_wrapper and spd during a large stream: what spd stores in the job
log must be byte-identical to what the command printed (sha256 of a tee'd copy), with no
duplicate and the command's own exit code."""
import os
import sys
from pathlib import Path

from conftest import SpdRun, free_port, sha256_file, stored_outputs, stream_job, write_generator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from cutting_proxy import CuttingProxy  # noqa: E402
from stalling_proxy import StallingProxy  # noqa: E402


JOB = f"fstream{os.getpid()}"


def run_stream_through(setup, proxy_factory, megabytes, exit_code, heartbeat_timeout=30, timeout=420):
    port = free_port()
    proxy = proxy_factory(port).start()
    gen = setup.scratch / "gen.py"
    printed = setup.scratch / "printed"
    write_generator(gen, megabytes, exit_code, printed)
    setup.write_config(stream_job(JOB, f"/usr/bin/python3 {gen}",
                                  f"    SP_WEBSOCKET_URL: ws://127.0.0.1:{proxy.port}\n"),
                       settings=f"machines_ws_port: {port}\nheartbeat_timeout: {heartbeat_timeout}\n"
                                f"output_max_bytes: 0\n")  # keep all: the log must be byte-identical
    spd = SpdRun(setup, ["--run-once", JOB])
    try:
        rc = spd.wait(timeout)
    finally:
        proxy.stop()
    return spd, rc, proxy, printed


def check_identical(setup, spd, rc, printed, exit_code):
    assert rc == exit_code, spd.stderr()[-3000:]
    records = stored_outputs(setup.logdir / f"{JOB}.log")
    assert len(records) == 1, f"{len(records)} machine_result records (a duplicate or a lost result)"
    code, body = records[0]
    assert code == exit_code
    stored = setup.scratch / "stored"
    stored.write_bytes(body)
    size_printed = printed.stat().st_size
    assert size_printed > 0
    assert sha256_file(stored) == sha256_file(printed), \
        f"stored output differs: {len(body)} bytes stored, {size_printed} printed"


def test_200_mb_through_20_seeded_cuts_is_stored_byte_identical(setup):
    # Budgets of 1-15 MB of client bytes per connection: 20 cuts spread over the 200 MB.
    proxy_factory = lambda port: CuttingProxy(port, seed=1028, min_bytes=1_000_000, max_bytes=15_000_000, cuts=20)
    spd, rc, proxy, printed = run_stream_through(setup, proxy_factory, 200, 7)
    check_identical(setup, spd, rc, printed, 7)
    assert proxy.cuts_done == 20, proxy.cuts_done


def test_stalled_connection_loses_and_duplicates_nothing(setup):
    # Six stalls of 4 s (no byte either way) during a 24 MB stream; heartbeat_timeout 10 s, so
    # no 253 may appear either.
    proxy_factory = lambda port: StallingProxy(port, seed=77, min_bytes=1_000_000, max_bytes=3_000_000, stalls=6,
                                               stall_seconds=4.0)
    spd, rc, proxy, printed = run_stream_through(setup, proxy_factory, 24, 3, heartbeat_timeout=10)
    check_identical(setup, spd, rc, printed, 3)
    assert proxy.stalls_done == 6, proxy.stalls_done
    assert "Exit Code 253" not in (setup.logdir / f"{JOB}.log").read_text(errors="replace")
