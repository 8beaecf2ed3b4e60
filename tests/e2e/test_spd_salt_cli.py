"""spd --transport salt-cli against the fake salt of tests/support/fake_salt (the shapes of
salt/TRANSCRIPTS.md), with our real sp_wrapper running on three fake minions."""
import os
from pathlib import Path

from conftest import SP_WRAPPER, log_seconds_between

FAKE_SALT = Path(__file__).resolve().parent.parent / "support" / "fake_salt"


def salt_settings():
    return f"""salt_binary: {FAKE_SALT / 'salt'}
salt_run_binary: {FAKE_SALT / 'salt-run'}
default_wrapper_path: {SP_WRAPPER}
"""


def fake_env(setup, down=""):
    env = dict(os.environ)
    env.update({"FAKE_SALT_MINIONS": "m1,m2,m3", "FAKE_SALT_DOWN": down,
                "FAKE_SALT_STATE": str(setup.scratch / "salt-state")})
    (setup.scratch / "salt-state").mkdir(exist_ok=True)
    return env


def job(name, command, extra=""):
    return f"""
{name}:
  command: "{command}"
  targets: 'm*'
  target_type: glob
  schedule: '@yearly'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
{extra}"""


def sections(stdout):
    """{machine: (header, body)} from spd --run-once output."""
    out = {}
    for part in stdout.split("===== ")[1:]:
        header, _, body = part.partition("\n")
        machine = header.split(":")[0]
        out[machine] = (header, body)
    return out


def test_wrapper_job_on_three_minions(setup):
    setup.write_config(job("hello", "echo hello from $SP_MACHINE_ID; exit 0"), settings=salt_settings())
    proc, _ = setup.run_once("hello", "--transport", "salt-cli", env=fake_env(setup))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = sections(proc.stdout)
    for m in ("m1", "m2", "m3"):
        assert found[m] == (f"{m}: exit 0 (success)", f"hello from {m}\n"), proc.stdout


def test_legacy_job_on_three_minions(setup):
    # The fake puts the minion id in SP_MACHINE_ID (a real minion's command would read its id).
    setup.write_config(job("legacy", "echo out-$SP_MACHINE_ID $SP_JOB_NAME; echo err >&2; exit ${SP_MACHINE_ID#m}",
                           "  use_wrapper: false\n"), settings=salt_settings())
    proc, _ = setup.run_once("legacy", "--transport", "salt-cli", env=fake_env(setup))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    found = sections(proc.stdout)
    for n, m in enumerate(("m1", "m2", "m3"), start=1):
        assert found[m][0].startswith(f"{m}: exit {n}"), proc.stdout
        assert found[m][1] == f"out-{m} legacy\nerr\n", proc.stdout
    # One --async publication for the batch, then salt-run jobs.list_job.
    assert "legacy: cmd.run_all on 3 target(s) through salt-cli" in proc.stderr
    assert "salt-cli: job " in proc.stderr and "published to 3 minion(s)" in proc.stderr


def test_legacy_timeout_is_124_with_salts_text(setup):
    setup.write_config(job("slow", "sleep 30", "  use_wrapper: false\n  timeout: 2\n"), settings=salt_settings())
    proc, took = setup.run_once("slow", "--transport", "salt-cli", env=fake_env(setup))
    assert proc.returncode == 124, proc.stdout + proc.stderr
    found = sections(proc.stdout)
    for m in ("m1", "m2", "m3"):
        assert found[m][0].startswith(f"{m}: exit 124"), proc.stdout
        assert found[m][1] == "sleep 30 : Timed out after 2 seconds\n", proc.stdout
    assert took < 25


def test_legacy_stopped_minion_is_255(setup):
    setup.write_config(job("partial_legacy", "echo ok", "  use_wrapper: false\n"), settings=salt_settings())
    proc, _ = setup.run_once("partial_legacy", "--transport", "salt-cli", env=fake_env(setup, down="m3"))
    assert proc.returncode == 255, proc.stdout + proc.stderr
    found = sections(proc.stdout)
    assert found["m3"][0].startswith("m3: exit 255"), proc.stdout
    assert found["m3"][1].startswith("Target did not respond"), proc.stdout
    assert found["m1"] == ("m1: exit 0 (success)", "ok\n")


def test_legacy_minion_that_never_returns_is_255(setup):
    # m3 answers test.ping but its return is lost. timeout 3 + timeout_grace 30 (default): it is
    # given up after 28 s, before spd's own 124 verdict at 33 s; m1 and m2 return long before.
    setup.write_config(job("lost_legacy", "echo ok", "  use_wrapper: false\n  timeout: 3\n"),
                       settings=salt_settings())
    env = fake_env(setup)
    env["FAKE_SALT_LOST"] = "m3"
    proc, _ = setup.run_once("lost_legacy", "--transport", "salt-cli", env=env)
    assert proc.returncode == 255, proc.stdout + proc.stderr
    found = sections(proc.stdout)
    assert found["m3"][0].startswith("m3: exit 255"), proc.stdout
    assert found["m3"][1].startswith("Target did not return anything\nno return within 28 s (jid "), proc.stdout
    assert found["m1"] == ("m1: exit 0 (success)", "ok\n")
    assert found["m2"] == ("m2: exit 0 (success)", "ok\n")


def test_legacy_unknown_user_is_255_with_salts_text(setup):
    setup.write_config(job("baduser", "id", "  use_wrapper: false\n  user: nosuchuser\n"), settings=salt_settings())
    proc, _ = setup.run_once("baduser", "--transport", "salt-cli", env=fake_env(setup))
    assert proc.returncode == 255, proc.stdout + proc.stderr
    found = sections(proc.stdout)
    for m in ("m1", "m2", "m3"):
        assert found[m][0].startswith(f"{m}: exit 255"), proc.stdout
        assert found[m][1] == "ERROR: User 'nosuchuser' is not available\n", proc.stdout


def test_stopped_minion_is_255_the_others_run(setup):
    setup.write_config(job("partial", "echo ok"), settings=salt_settings())
    proc, _ = setup.run_once("partial", "--transport", "salt-cli", env=fake_env(setup, down="m3"))
    assert proc.returncode == 255, proc.stdout + proc.stderr
    found = sections(proc.stdout)
    assert found["m3"][0].startswith("m3: exit 255"), proc.stdout
    assert "Target did not respond" in found["m3"][1]
    assert found["m1"] == ("m1: exit 0 (success)", "ok\n")


def test_missing_wrapper_is_127_within_two_seconds(setup):
    setup.write_config(job("nowrap", "true", "  wrapper_path: /nonexistent/sp_wrapper\n"), settings=salt_settings())
    proc, took = setup.run_once("nowrap", "--transport", "salt-cli", env=fake_env(setup))
    assert proc.returncode == 127, proc.stdout + proc.stderr
    assert "Salt execution error:" in proc.stdout and "No such file or directory" in proc.stdout
    assert log_seconds_between(proc.stderr, "run started", "finished with 127") < 2.0
