"""spd's OpenSearch/Elasticsearch sinks against a fake _bulk endpoint on 127.0.0.1 (PROTOCOL.md 4.3)."""
import datetime
import http.server
import json
import re
import threading
import urllib.request

import pytest

from test_spd import job


class FakeBulk:
    """Records every request; answers 500 to the first `fail_first` ones, then 200."""

    def __init__(self, fail_first=0):
        self.requests = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                with outer.lock:
                    outer.requests.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                           "authorization": self.headers.get("Authorization"), "body": body})
                    failing = len(outer.requests) <= outer.fail_first
                reply = b'{"error":"unavailable"}' if failing else b'{"took":1,"errors":false,"items":[]}'
                self.send_response(500 if failing else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def accepted_pairs(self):
        """(action, document) pairs of the requests answered 200."""
        with self.lock:
            bodies = [r["body"] for i, r in enumerate(self.requests) if i >= self.fail_first]
        pairs = []
        for body in bodies:
            lines = body.split("\n")
            assert lines[-1] == "", "an NDJSON body ends with a newline"
            for i in range(0, len(lines) - 1, 2):
                pairs.append((json.loads(lines[i]), json.loads(lines[i + 1])))
        return pairs


@pytest.fixture
def bulk():
    servers = []

    def make(**kwargs):
        server = FakeBulk(**kwargs)
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.close()


def log_times(log):
    """The <time> of the start, machine_start, machine_result and end records of one run, as isoformat()."""
    def iso(text):
        return text.replace(" ", "T")
    start = re.search(r"###### Starting \S+ at (\S+ \S+) #", log).group(1)
    machine_start = re.search(r"###### Starting \S+ on testhost at (\S+ \S+) #", log).group(1)
    result = re.search(r"####### END testhost from \S+ at (\S+ \S+) #", log).group(1)
    end = re.search(r"###### Finished \S+ at (\S+ \S+) #", log).group(1)
    return [iso(start), iso(machine_start), iso(result), iso(end)]


def expected_documents(log, instance, code, output):
    t = log_times(log)
    base = {"job_name": "search_docs", "group": "jobs", "job_instance": instance}
    return [
        {**base, "@timestamp": t[0], "return_code": 0, "machine": "", "output": "", "msg_type": "start"},
        {**base, "@timestamp": t[1], "return_code": 0, "machine": "testhost", "output": "", "msg_type": "machine_start"},
        {**base, "@timestamp": t[2], "return_code": code, "machine": "testhost", "output": output,
         "msg_type": "machine_result"},
        # The end record's out text goes only to the search engine (PROTOCOL.md 4.1).
        {**base, "@timestamp": t[3], "return_code": 0 if code == 0 else 1, "machine": "",
         "output": f"Completed: {1 if code == 0 else 0}/1 targets successful", "msg_type": "end"},
    ]


def test_a_run_sends_exactly_its_documents_to_the_daily_index(setup, bulk):
    os_server, es_server = bulk(), bulk()
    setup.write_config(job("search_docs", r"printf '10%%\\r100%%\\ndone\\n'; exit 3"),
                       settings=f"""\
        opensearch: {os_server.url}
        opensearch_index: sp-os
        elasticsearch: http://elastic:pa%3Ass@{es_server.url[len('http://'):]}
        """)
    day_before = datetime.date.today().strftime("%Y.%m.%d")
    proc, _ = setup.run_once("search_docs")
    day_after = datetime.date.today().strftime("%Y.%m.%d")
    assert proc.returncode == 3, proc.stderr
    assert "pa%3Ass" not in proc.stderr and "pa:ss" not in proc.stderr
    instance = re.search(r"###### Starting (\S+) at ", setup.job_log("search_docs")).group(1)
    expected = expected_documents(setup.job_log("search_docs"), instance, 3, "100%\ndone\n")

    for server, prefix in ((os_server, "sp-os"), (es_server, "saltpeter")):
        pairs = server.accepted_pairs()
        assert [doc for _, doc in pairs] == expected
        # json.loads keeps the key order: the original's field order.
        assert [list(doc) for _, doc in pairs] == [list(e) for e in expected]
        indexes = {action["index"]["_index"] for action, _ in pairs}
        assert indexes in ({f"{prefix}-{day_before}"}, {f"{prefix}-{day_after}"})
        for r in server.requests:
            assert r["path"] == "/_bulk"
            assert r["content_type"] == "application/x-ndjson"
    assert all(r["authorization"] is None for r in os_server.requests)
    assert all(r["authorization"] == "Basic ZWxhc3RpYzpwYTpzcw==" for r in es_server.requests)  # elastic:pa:ss


def test_documents_arrive_after_the_endpoint_failed_the_first_requests(setup, bulk):
    server = bulk(fail_first=2)
    setup.write_config(job("search_retry", "echo hello"), settings=f"""\
        opensearch: {server.url}
        api_ws: true
        api_ws_port: 0
        api_ws_bind_addr: 127.0.0.1
        """)
    spd = setup.start_spd()
    lines = []
    threading.Thread(target=lambda: lines.extend(spd.stderr), daemon=True).start()

    def api_port():
        for line in list(lines):
            m = re.search(r"API listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                return int(m.group(1))
        return None

    port = setup.wait_for(api_port, 20, "the API port in spd's log")
    req = urllib.request.Request(f"http://127.0.0.1:{port}/jobs/search_retry/run", method="POST", data=b"{}")
    urllib.request.urlopen(req, timeout=10).read()
    setup.wait_for(lambda: len(server.accepted_pairs()) == 4, 30, "four documents accepted after the retries")
    assert len(server.requests) >= 3
    # What the endpoint refused was sent again: every refused document is among the accepted ones.
    accepted = [doc for _, doc in server.accepted_pairs()]
    for refused in server.requests[:2]:
        for line in refused["body"].split("\n")[1::2]:
            if line:
                assert json.loads(line) in accepted
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert 'saltpeter_search_documents_sent_total{sink="opensearch"} 4' in metrics
    assert 'saltpeter_search_documents_dropped_total{sink="opensearch"} 0' in metrics
    assert 'saltpeter_search_documents_failed_total{sink="opensearch"} 0' in metrics
    assert 'saltpeter_search_queue_depth{sink="opensearch"} 0' in metrics
    retries = int(re.search(r'saltpeter_search_retries_total\{sink="opensearch"\} (\d+)', metrics).group(1))
    assert retries >= 2
    spd.terminate()
    assert spd.wait(timeout=20) == 0
    assert [d["msg_type"] for d in accepted] == ["start", "machine_start", "machine_result", "end"]
    assert [d["job_name"] for d in accepted] == ["search_retry"] * 4
    assert accepted[2]["output"] == "hello\n" and accepted[2]["return_code"] == 0
    assert "opensearch sink" in "".join(lines) and "HTTP 500" in "".join(lines)
