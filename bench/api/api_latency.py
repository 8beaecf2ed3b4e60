#!/usr/bin/env python3
"""Prints API numbers of a real spd (local transport) on 127.0.0.1; not a test.

  /usr/bin/python3 bench/api/api_latency.py build

- GET /jobs and GET /status: requests per second and p50/p99 latency over N sequential requests
  (each on a new connection: spd answers HTTP with Connection: close);
- run-now to "first output line seen by a push-mode /ws client", and run-now --wait wall time of
  `spctl` for a job that prints one line (launch + wrapper start + completion).
"""
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import websockets

build = Path(sys.argv[1] if len(sys.argv) > 1 else "build").resolve()
SPD, SPCTL = build / "apps/spd/spd", build / "apps/spctl/spctl"
N = int(os.environ.get("N", "300"))


def main():
    with tempfile.TemporaryDirectory(prefix="sp-apibench-") as d:
        d = Path(d)
        (d / "config").mkdir()
        (d / "config/jobs.yaml").write_text(textwrap.dedent(f"""\
            saltpeter_config:
              logdir: {d}/log
              machines_ws_bind_addr: 127.0.0.1
              machines_ws_port: 0
              api_ws: true
              api_ws_port: 0
              default_wrapper_logdir: {d}/wlog
              local_minions: [benchhost]
            hello:
              command: "echo hello"
              targets: benchhost
              schedule: '@yearly'
              env:
                SP_OUTPUT_INTERVAL_MS: '10'
            """))
        spd = subprocess.Popen([SPD, "-c", d / "config"], stderr=subprocess.PIPE, text=True)
        lines = []
        threading.Thread(target=lambda: [lines.append(l) for l in spd.stderr], daemon=True).start()
        port = None
        while port is None:
            time.sleep(0.05)
            for l in list(lines):
                m = re.search(r"API listening on http://127\.0\.0\.1:(\d+)", l)
                port = int(m.group(1)) if m else port
        url = f"http://127.0.0.1:{port}"
        try:
            for path in ("/jobs", "/status"):
                samples = []
                start = time.perf_counter()
                for _ in range(N):
                    t = time.perf_counter()
                    urllib.request.urlopen(url + path, timeout=10).read()
                    samples.append(time.perf_counter() - t)
                total = time.perf_counter() - start
                samples.sort()
                print(f"GET {path}: {N / total:.0f} req/s, p50 {samples[len(samples) // 2] * 1000:.2f} ms, "
                      f"p99 {samples[int(len(samples) * 0.99)] * 1000:.2f} ms ({N} sequential requests)")

            async def first_output():
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws?push=1&subscribe=hello") as ws:
                    t = time.perf_counter()
                    req = urllib.request.Request(url + "/jobs/hello/run", method="POST", data=b"{}")
                    instance = json.loads(urllib.request.urlopen(req, timeout=10).read())["instance"]
                    while True:
                        f = json.loads(await ws.recv())
                        if f.get("type") == "output_chunk" and f.get("job_instance") == instance and f["chunk"]:
                            return time.perf_counter() - t

            firsts = []
            for _ in range(5):
                firsts.append(asyncio.run(first_output()))
                time.sleep(0.3)
            print(f"run-now -> first output on a push /ws client: median {statistics.median(firsts) * 1000:.0f} ms "
                  f"(5 runs, local transport)")
            waits = []
            for _ in range(5):
                t = time.perf_counter()
                subprocess.run([SPCTL, "--url", url, "run-now", "hello", "--wait"], check=True,
                               capture_output=True)
                waits.append(time.perf_counter() - t)
            print(f"spctl run-now --wait (one-line job): median {statistics.median(waits) * 1000:.0f} ms (5 runs)")
        finally:
            spd.terminate()
            spd.wait()


main()
