"""spd --transport salt-api against the fake salt-api of tests/support (the shapes of
salt/TRANSCRIPTS.md item 7), with our real sp_wrapper on three fake minions."""
import os
import subprocess
import sys
from pathlib import Path

from conftest import SP_WRAPPER

FAKE_API = Path(__file__).resolve().parent.parent / "support" / "fake_salt_api.py"


def start_fake_api(down=""):
    env = dict(os.environ, FAKE_SALT_MINIONS="m1,m2,m3", FAKE_SALT_DOWN=down)
    proc = subprocess.Popen([sys.executable, str(FAKE_API)], stdout=subprocess.PIPE, text=True, env=env)
    port = int(proc.stdout.readline().strip())
    return proc, port


def config(setup, port, job_yaml, extra=""):
    secret = setup.scratch / "salt-api.password"
    secret.write_text("saltpeter-secret\n")
    secret.chmod(0o600)
    setup.write_config(job_yaml, settings=f"""salt_api_url: http://127.0.0.1:{port}
salt_api_username: saltpeter
salt_api_password_file: {secret}
salt_api_eauth: sharedsecret
default_wrapper_path: {SP_WRAPPER}
""" + extra)


def test_wrapper_job_on_three_minions_through_salt_api(setup):
    api, port = start_fake_api(down="m3")
    try:
        config(setup, port, """
hello:
  command: "echo hello from $SP_MACHINE_ID"
  targets: 'm*'
  schedule: '@yearly'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
""")
        proc, _ = setup.run_once("hello", "--transport", "salt-api", timeout=120)
    finally:
        api.terminate()
        api.wait(10)
    assert proc.returncode == 255, proc.stdout + proc.stderr
    assert "===== m1: exit 0 (success)\nhello from m1\n" in proc.stdout
    assert "===== m2: exit 0 (success)\nhello from m2\n" in proc.stdout
    assert "===== m3: exit 255" in proc.stdout and "Target did not respond" in proc.stdout


def test_legacy_job_on_three_minions_through_salt_api(setup):
    api, port = start_fake_api(down="m3")
    try:
        config(setup, port, """
legacy:
  command: "echo out $SP_JOB_NAME; echo err >&2; exit 6"
  targets: 'm*'
  schedule: '@yearly'
  use_wrapper: false
  timeout: 4
""")
        proc, _ = setup.run_once("legacy", "--transport", "salt-api", timeout=120)
    finally:
        api.terminate()
        api.wait(10)
    assert proc.returncode == 255, proc.stdout + proc.stderr
    assert "===== m1: exit 6" in proc.stdout and "\nout legacy\nerr\n" in proc.stdout
    assert "===== m2: exit 6" in proc.stdout
    # The stopped minion fails test.ping first (the Dispatcher), so it is never published to.
    assert "===== m3: exit 255" in proc.stdout and "Target did not respond" in proc.stdout
    assert "published to 2 minion(s)" in proc.stderr


def test_legacy_timeout_is_124_through_salt_api(setup):
    api, port = start_fake_api()
    try:
        config(setup, port, """
slow:
  command: "sleep 30"
  targets: 'm*'
  schedule: '@yearly'
  use_wrapper: false
  timeout: 2
""")
        proc, took = setup.run_once("slow", "--transport", "salt-api", timeout=120)
    finally:
        api.terminate()
        api.wait(10)
    assert proc.returncode == 124, proc.stdout + proc.stderr
    for m in ("m1", "m2", "m3"):
        assert f"===== {m}: exit 124" in proc.stdout
    assert proc.stdout.count("sleep 30 : Timed out after 2 seconds\n") == 3
    assert took < 25


def test_wrong_password_file_fails_start_clearly(setup):
    setup.write_config("", settings="""salt_api_url: http://127.0.0.1:9
salt_api_password_file: /nonexistent/password
""")
    proc, _ = setup.run_once("nothing", "--transport", "salt-api")
    assert proc.returncode == 1
    assert "cannot read salt_api_password_file /nonexistent/password" in proc.stderr
