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
    setup.write_config(job("legacy", "echo legacy; exit 4", "  use_wrapper: false\n"), settings=salt_settings())
    proc, _ = setup.run_once("legacy", "--transport", "salt-cli", env=fake_env(setup))
    assert proc.returncode == 4, proc.stdout + proc.stderr
    found = sections(proc.stdout)
    for m in ("m1", "m2", "m3"):
        assert found[m][0].startswith(f"{m}: exit 4"), proc.stdout
        assert "legacy" in found[m][1]


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
