"""`gridhunt hunt` runs the identity analytics; `gridhunt timeline` tells one subject's story."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridhunt.cli import app
from tests.conftest import TEST_DATA

AUTH = TEST_DATA / "auth"


@pytest.fixture(scope="module")
def hunted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("hunt")
    rules = tmp / "no-rules"
    rules.mkdir()  # the analytics alone: keeps the test fast
    res = CliRunner().invoke(
        app, ["hunt", str(AUTH), "--case", str(tmp / "case.duckdb"), "--out", str(tmp / "out"), "--rules", str(rules)]
    )
    assert res.exit_code == 0, res.output
    return tmp


def test_hunt_summary_lists_every_analytic_and_the_findings(hunted: Path) -> None:
    s = json.loads((hunted / "out" / "summary.json").read_text())
    names = [a["name"] for a in s["analytics"]["analytics"]]
    assert "auth.password_spray" in names and "auth.off_hours" in names
    assert s["ingest"]["auth_rows_from_windows"] == 10
    found = [json.loads(x) for x in (hunted / "out" / "findings.jsonl").read_text().splitlines()]
    by_rule = {f["rule_id"]: f for f in found}
    assert by_rule["auth.password_spray"]["entity"] == "198.51.100.23"
    assert by_rule["auth.failures_then_success"]["severity"] == "critical"
    assert by_rule["auth.impossible_travel"]["entity"] == "mc.gcook DE->SG"
    assert by_rule["auth.new_country"]["entity"] == "mc.gcook new country SG"


def test_timeline_of_a_user_is_ordered_with_geo_and_findings(hunted: Path) -> None:
    res = CliRunner().invoke(app, ["timeline", str(hunted / "case.duckdb"), "--user", "MC.GCOOK", "--json"])
    assert res.exit_code == 0, res.output
    entries = [json.loads(x) for x in res.stdout.splitlines()]
    auth = [e for e in entries if e["kind"] == "auth"]
    assert [e["outcome"] for e in auth] == ["success", "success", "failure", "failure", "failure", "success"]
    assert [e["country"] for e in auth] == ["DE", "DE", "NL", "NL", "NL", "SG"]
    assert [e["ts"] for e in entries] == sorted(e["ts"] for e in entries)
    last = auth[-1]
    assert last["src_ip"] == "198.51.100.200" and last["source_ref"] == "line 20"
    assert {"auth.failures_then_success", "auth.impossible_travel", "auth.new_country"} <= set(last["findings"])
    assert "auth.password_spray" in auth[2]["findings"]


def test_timeline_by_ip_and_host_and_the_table_view(hunted: Path) -> None:
    case = str(hunted / "case.duckdb")
    res = CliRunner().invoke(app, ["timeline", case, "--ip", "198.51.100.23", "--json"])
    entries = [json.loads(x) for x in res.stdout.splitlines()]
    assert len([e for e in entries if e["kind"] == "auth"]) == 14
    res = CliRunner().invoke(app, ["timeline", case, "--host", "ws07", "--json"])
    hosts = [json.loads(x) for x in res.stdout.splitlines()]
    assert {e["event_id"] for e in hosts} == {4624, 4648, 4740, 4776}
    res = CliRunner().invoke(app, ["timeline", case, "--user", "mc.gcook"], env={"COLUMNS": "220"})
    assert res.exit_code == 0 and "SG" in res.stdout and "failure: bad password" in res.stdout


def test_timeline_errors_are_clear(hunted: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["timeline", str(tmp_path / "nope.duckdb"), "--user", "x"])
    assert res.exit_code == 2 and "no such case file" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["timeline", str(hunted / "case.duckdb"), "--user", "x", "--ip", "1.2.3.4"])
    assert res.exit_code == 2 and "exactly one of --user, --host, --ip" in " ".join(res.output.split())


def test_bad_config_and_bad_mmdb_stop_before_any_work(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("auth.brute_force:\n  min_failure: 3\n")
    res = CliRunner().invoke(app, ["hunt", str(AUTH), "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "auth.brute_force.min_failure: unknown setting" in " ".join(res.output.split())
    bad = tmp_path / "x.mmdb"
    bad.write_bytes(b"not a database")
    res = CliRunner().invoke(app, ["hunt", str(AUTH), "--geoip", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "not a readable MaxMind database" in " ".join(res.output.split())
    assert not (tmp_path / "o").exists()


def test_analytics_lists_every_registered_analytic_and_prints_loadable_defaults() -> None:
    import yaml

    from gridhunt.detect import all_analytics
    from gridhunt.detect.settings import default_settings

    res = CliRunner().invoke(app, ["analytics"], env={"COLUMNS": "250"})
    assert res.exit_code == 0
    for a in all_analytics():
        assert a.name in res.stdout
    res = CliRunner().invoke(app, ["analytics", "--defaults"])
    assert yaml.safe_load(res.stdout) == default_settings()
    # every analytic has settings, and every settings block belongs to an analytic
    assert {a.name for a in all_analytics()} == set(default_settings())


def test_duckdb_never_draws_its_progress_bar_on_stdout(hunted: Path) -> None:
    # a query over 2 s would otherwise print a bar into `--json` output
    from gridhunt.case import Case

    for read_only in (False, True):
        with Case.open(hunted / "case.duckdb", read_only=read_only) as c:
            assert c.con.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
