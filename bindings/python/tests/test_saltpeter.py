"""The saltpeter Python module against the same facts the C++ tests and spctl check."""
import datetime
import subprocess
import zoneinfo

import pytest

import saltpeter

UTC = datetime.timezone.utc
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def test_version_matches_spctl(spctl):
    out = subprocess.run([spctl, "--version"], capture_output=True, text=True, check=True).stdout
    assert out == f"spctl {saltpeter.__version__}\n"


def test_next_after_in_a_dst_gap_returns_an_aware_datetime():
    expr = saltpeter.CronExpression("0 30 2 * * * *")
    start = datetime.datetime(2027, 3, 27, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    nxt = expr.next_after(start, "Europe/Berlin")
    assert nxt.isoformat() == "2027-03-28T03:00:00+02:00"
    assert nxt.utcoffset() == datetime.timedelta(hours=2)
    assert nxt.tzname() == "CEST"
    # The same instant as Python's own zone data says.
    assert nxt == datetime.datetime(2027, 3, 28, 3, 0, tzinfo=BERLIN)


def test_next_after_accepts_zoneinfo_and_any_aware_input():
    expr = saltpeter.CronExpression("@daily")
    start = datetime.datetime(2027, 7, 1, 12, 0, tzinfo=BERLIN)
    assert expr.next_after(start, BERLIN).isoformat() == "2027-07-02T00:00:00+02:00"
    assert expr.next_after(start).isoformat() == "2027-07-02T00:00:00+00:00"  # default zone UTC


def test_next_after_is_strictly_after_and_drops_fractions():
    expr = saltpeter.CronExpression("* * * * * * *")
    start = datetime.datetime(2030, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert expr.next_after(start, "UTC") == datetime.datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_next_after_returns_none_when_it_never_fires_again():
    expr = saltpeter.CronExpression("0 0 0 1 1 * 2020")
    assert expr.next_after(datetime.datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_iteration_over_fire_times():
    expr = saltpeter.CronExpression("0 0 9 * * MON-FRI *")
    times = expr.iter_after(datetime.datetime(2027, 1, 1, tzinfo=UTC), "UTC")  # a Friday
    first = [next(times) for _ in range(3)]
    assert [t.isoformat() for t in first] == [
        "2027-01-01T09:00:00+00:00", "2027-01-04T09:00:00+00:00", "2027-01-05T09:00:00+00:00"]
    # A finite schedule ends the iteration.
    finite = saltpeter.CronExpression("0 0 0 1 1 * 2098-2099")
    assert [t.year for t in finite.iter_after(datetime.datetime(2090, 1, 1, tzinfo=UTC))] == [2098, 2099]


def test_bad_expression_raises_value_error_with_spctls_message(spctl):
    with pytest.raises(ValueError) as err:
        saltpeter.CronExpression("0 0 0 * * 8 *")
    assert str(err.value) == "field 'dow': '8' is out of range 0-7"
    cli = subprocess.run([spctl, "next", "--expr", "0 0 0 * * 8 *"], capture_output=True, text=True)
    assert cli.returncode == 1
    assert cli.stderr == f"spctl next: {err.value}\n"


def test_naive_datetime_and_unknown_zone_are_value_errors():
    expr = saltpeter.CronExpression("@hourly")
    with pytest.raises(ValueError, match="naive datetime"):
        expr.next_after(datetime.datetime(2027, 1, 1))
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        expr.next_after(datetime.datetime(2027, 1, 1, tzinfo=UTC), "Mars/Olympus")
    with pytest.raises(TypeError):
        expr.next_after("2027-01-01")


def test_from_fields_and_properties():
    expr = saltpeter.CronExpression.from_fields(min="15", hour="1", dom="*", mon="*", dow="*")
    assert expr.fields == {"sec": "0", "min": "15", "hour": "1", "dom": "*", "mon": "*", "dow": "*", "year": "*"}
    assert not expr.follows_real_time
    assert saltpeter.CronExpression("0 */5 * * * * *").follows_real_time
    assert repr(saltpeter.CronExpression(" @weekly ")) == "CronExpression('@weekly')"
    with pytest.raises(ValueError, match="field 'hour'"):
        saltpeter.CronExpression.from_fields(min="0", hour="24", dom="*", mon="*", dow="*")


def test_load_config_of_the_examples(source_dir):
    config = saltpeter.load_config(str(source_dir / "examples" / "config"))
    assert config.error_count == 0
    names = [j.name for j in config.jobs]
    assert names == sorted(names) and "berlin_backup" in names
    job = config.job("nightly_report")
    assert job.command == "/opt/reports/nightly.sh --all"
    assert job.env == {"REPORT_FORMAT": "pdf", "VERBOSE": "true", "RETENTION_DAYS": "30"}
    assert job.timeout == 1800 and job.user == "reports" and job.target_type == "glob"
    assert job.schedule.fields["hour"] == "2"
    assert config.job("no_such_job") is None
    berlin = config.job("berlin_backup")
    assert berlin.timezone == "Europe/Berlin"
    assert berlin.schedule.next_after(datetime.datetime(2027, 3, 27, 12, tzinfo=UTC), berlin.timezone).isoformat() \
        == "2027-03-28T01:15:00+01:00"


def test_validate_reports_problems_as_objects_like_spctl(source_dir, spctl):
    broken = source_dir / "tests" / "data" / "config" / "broken"
    problems = saltpeter.validate(str(broken))
    assert problems, "the broken directory has problems"
    p = next(p for p in problems if p.job == "bad_timeout")
    assert (p.field, p.severity, p.is_error) == ("timeout", "error", True)
    assert p.file.endswith("mixed.yaml") and p.line == 25 and p.column == 12
    assert "negative" in p.message
    cli = subprocess.run([spctl, "validate", "-c", str(broken)], capture_output=True, text=True)
    assert cli.returncode == 1
    assert cli.stdout.splitlines()[:-1] == [str(p) for p in problems]


def test_validate_text_and_schedule_checks():
    text = "old:\n  command: /bin/true\n  targets: '*'\n  schedule: '0 0 0 1 1 * 2020'\n"
    problems = saltpeter.validate_text(text, "old.yaml", now=datetime.datetime(2026, 1, 1, tzinfo=UTC))
    assert len(problems) == 1
    assert problems[0].job == "old" and problems[0].file == "old.yaml" and problems[0].is_error
    assert saltpeter.validate_text(text, "old.yaml", now=datetime.datetime(2019, 1, 1, tzinfo=UTC)) == []


def test_missing_directory_is_file_not_found():
    with pytest.raises(FileNotFoundError, match="/nonexistent/saltpeter"):
        saltpeter.load_config("/nonexistent/saltpeter")


def test_exit_code_mapper():
    M = saltpeter.ExitCodeMapper
    assert M.meaning(0) == "success"
    assert M.outcome(253) == "heartbeat_lost"
    assert M.outcome(124) == "timeout"
    assert M.outcome(-9) == "signaled"
    assert M.outcome(3) == "command_failed"
    assert "SIGKILL" in M.meaning(-9)
    assert M.is_success(0) and not M.is_success(1)
    table = M.table()
    assert [r[0] for r in table] == sorted(r[0] for r in table)
    assert any(first <= 253 <= last for first, last, _, _ in table)
    assert saltpeter.signal_name(15) == "SIGTERM"


def test_import_crontab():
    result = saltpeter.import_crontab("MAILTO=root\n*/5 * * * * /usr/bin/poll.sh\n@reboot x\n", targets="web*")
    assert result.jobs == 1
    assert [(p.line, p.severity) for p in result.problems] == [(1, "warning"), (3, "error")]
    problems = saltpeter.validate_text(result.yaml, "imported.yaml")
    assert [p for p in problems if p.is_error] == []
    with pytest.raises(ValueError, match="unknown target type 'pigeon'"):
        saltpeter.import_crontab("", targets="x", target_type="pigeon")


def test_docstrings():
    assert "ValueError" in saltpeter.CronExpression.__init__.__doc__
    assert saltpeter.load_config.__doc__ and saltpeter.validate.__doc__
    assert "aware" in saltpeter.CronExpression.next_after.__doc__
