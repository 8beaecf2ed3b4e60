"""The Python bindings' ApiClient against a real spd + sp_wrapper on 127.0.0.1."""
import os
import re
import sys
import threading

import pytest

MODULE_DIR = os.environ.get("SALTPETER_PYTHON_MODULE_DIR", "")
if not MODULE_DIR:
    pytest.skip("the Python bindings are not built (SALTPETER_BUILD_PYTHON=OFF)", allow_module_level=True)
sys.path.insert(0, MODULE_DIR)
import saltpeter  # noqa: E402

TOKEN = "py-operate-token-0123456789"
READ = "py-read-token-0123456789"

JOBS = """
pyapi_hello:
  command: "echo hello from python; exit 3"
  targets: testhost
  schedule: '@yearly'
pyapi_sleeper:
  command: "echo sleeping; sleep 300"
  targets: testhost
  schedule: '@yearly'
"""

SETTINGS = f"""\
api_ws: true
api_ws_bind_addr: 127.0.0.1
api_ws_port: 0
kill_grace: 10
api_tokens:
  - {{name: ops, token: {TOKEN}, role: operate}}
  - {{name: reader, token: {READ}, role: read}}
"""


@pytest.fixture
def url(setup):
    setup.write_config(JOBS, settings=SETTINGS)
    proc = setup.start_spd()
    lines = []
    threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()

    def port():
        for line in list(lines):
            m = re.search(r"API listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                return int(m.group(1))
        return None

    return f"http://127.0.0.1:{setup.wait_for(port, 20, 'the API port in spd log')}"


def test_run_now_history_logs_and_status(url, setup):
    client = saltpeter.ApiClient(url, token=TOKEN)
    assert client.url == url
    names = {j["name"] for j in client.status()}
    assert names == {"pyapi_hello", "pyapi_sleeper"}
    instance = client.run_now("pyapi_hello")
    assert instance.startswith("pyapi_hello_")
    run = setup.wait_for(lambda: (r := client.run(instance))["finished"] and r, 30, "the run to finish")
    assert run["success"] is False
    assert [(t["machine"], t["retcode"]) for t in run["targets"]] == [("testhost", 3)]
    assert client.logs("pyapi_hello") == {"testhost": "hello from python\n"}
    assert client.logs("pyapi_hello", instance=instance, machine="testhost") == {"testhost": "hello from python\n"}
    history = client.history("pyapi_hello", limit=5)
    assert history[0]["instance"] == instance and history[0]["targets"][0]["retcode"] == 3
    assert client.job("pyapi_hello")["last_success"] is False


def test_kill_and_errors_are_python_exceptions(url, setup):
    client = saltpeter.ApiClient(url, token=TOKEN)
    instance = client.run_now("pyapi_sleeper")
    setup.wait_for(lambda: any(t["state"] == "started" for t in client.run(instance)["targets"]), 30,
                   "the sleeper to start")
    client.kill("pyapi_sleeper")
    run = setup.wait_for(lambda: (r := client.run(instance))["finished"] and r, 30, "the kill to finish the run")
    assert run["targets"][0]["retcode"] == 143
    with pytest.raises(RuntimeError):
        client.kill("pyapi_sleeper")  # nothing runs any more
    with pytest.raises(LookupError, match="pyapi_helo"):
        client.run_now("pyapi_helo")
    with pytest.raises(PermissionError):
        saltpeter.ApiClient(url, token="wrong-token").status()
    with pytest.raises(PermissionError):
        saltpeter.ApiClient(url, token=READ).run_now("pyapi_hello")
    with pytest.raises(ConnectionError, match="127.0.0.1:1"):
        saltpeter.ApiClient("http://127.0.0.1:1", token=TOKEN, timeout=2).status()
    with pytest.raises(ValueError):
        saltpeter.ApiClient(url, timeout=0)


def test_embedding_example_drives_spd_through_api_client(url):
    """examples/embedding/api_client.cpp: run-now, live output, per-target exit codes."""
    import subprocess
    example = os.environ.get("SALTPETER_EXAMPLE_API_CLIENT", "")
    if not example:
        pytest.skip("the embedding examples are not built")
    r = subprocess.run([example, url, "pyapi_hello"], env=dict(os.environ, SALTPETER_TOKEN=TOKEN),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "2 job(s) configured"
    assert lines[1].startswith("started pyapi_hello_")
    assert "testhost | hello from python" in lines
    assert lines[-1].startswith("testhost exit 3 (")
    bad = subprocess.run([example, url, "pyapi_hello"], env=dict(os.environ, SALTPETER_TOKEN="wrong"),
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 3 and url in bad.stderr
