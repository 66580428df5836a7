"""Identity analytics: each fires on the attack shape and stays quiet on its benign twin.

Auth rows are written straight into a real case (as the Windows / VPN / AMI readers would);
public addresses are TEST-NET ranges given countries through the site geo overlay."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gridhunt.case import Case
from gridhunt.detect import run_analytics
from gridhunt.detect.settings import SettingsError, load_settings
from tests.conftest import run_analytic, utc

NL, SG, DE, GB, FR = "198.51.100.23", "198.51.100.200", "203.0.113.10", "192.0.2.10", "192.0.2.200"
T0 = utc(2026, 4, 1, 9, 0, 0)
_ref = iter(range(1, 10**9))


@pytest.fixture
def c(tmp_path: Path) -> Case:
    case = Case.open(tmp_path / "c.duckdb")
    case.con.executemany(
        "INSERT INTO geo_networks (cidr, country, asn, org, source_file, source_ref) VALUES (?, ?, ?, ?, 'geo', '-')",
        [
            ("198.51.100.0/25", "NL", "AS64510", "VPS Host"),
            ("198.51.100.128/25", "SG", "AS64511", "Cloud SG"),
            ("203.0.113.0/24", "DE", "AS64502", "MeterCo GmbH"),
            ("192.0.2.0/25", "GB", "AS64500", "Home Broadband"),
            ("192.0.2.128/25", "FR", "AS64503", "Hotel Wifi"),
        ],
    )
    case.con.execute(
        "INSERT INTO vendor_access (vendor, kind, identifier) VALUES ('MeterCo', 'vpn_account', 'mc.gcook')"
    )
    yield case
    case.close()


def login(
    c: Case,
    ts: datetime,
    user: str,
    ip: str | None,
    outcome: str = "success",
    source: str = "vpn",
    event_id: int | None = None,
    logon_type: str | None = None,
    host: str | None = None,
) -> str:
    ref = f"line {next(_ref)}"
    c.con.execute(
        'INSERT INTO auth (ts, "user", src_ip, src_host, dst_host, outcome, source, source_file, source_ref, '
        "event_id, logon_type) VALUES (?, ?, ?, ?, 'vpn01', ?, ?, ?, ?, ?, ?)",
        [ts, user, ip, host, outcome, source, f"{source}.log", ref, event_id, logon_type],
    )
    return ref


def run(c: Case, name: str, settings: dict | None = None):
    return run_analytic(c, name, settings).findings


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# ---- password spraying ------------------------------------------------------------------------


def test_spray_one_source_many_accounts_fires_across_vpn_and_windows(c: Case) -> None:
    for i in range(12):
        source, eid = ("vpn", None) if i % 2 else ("windows", 4625)
        login(c, T0 + minutes(i), f"user{i:02d}", NL, "failure", source, eid)
    (f,) = run(c, "auth.password_spray")
    assert (f.entity, f.count, f.severity, f.rule_id) == (NL, 12, "medium", "auth.password_spray")
    assert f.details["accounts"] == 12 and f.details["sources"] == ["vpn", "windows"]
    assert f.details["country"] == "NL"
    assert [e["source_ref"] for e in f.evidence] == sorted(
        (e["source_ref"] for e in f.evidence), key=lambda r: int(r[5:])
    )
    assert f.evidence[0]["fields"]["user"] == "user00" and f.evidence[0]["source_file"] == "windows.log"
    assert f.attack == ["T1110.003"]


def test_spray_then_one_sprayed_account_logs_in_from_the_same_source_is_high(c: Case) -> None:
    for i in range(12):
        login(c, T0 + minutes(i), f"user{i:02d}", NL, "failure")
    login(c, T0 + minutes(40), "user03", NL)
    (f,) = run(c, "auth.password_spray")
    assert f.severity == "high" and f.details["succeeded_afterwards"] == ["user03"]


def test_admin_typos_and_slow_scattered_failures_are_not_spraying(c: Case) -> None:
    login(c, T0, "admin1", "10.1.2.3", "failure", "windows", 4625)
    login(c, T0 + minutes(1), "admin1", "10.1.2.3", "failure", "windows", 4625)
    login(c, T0 + minutes(2), "admin1", "10.1.2.3", "success", "windows", 4624)
    # twelve accounts from one source, but an hour apart: no burst
    for i in range(12):
        login(c, T0 + minutes(60 * i), f"user{i:02d}", NL, "failure")
    assert run(c, "auth.password_spray") == []


def test_local_failures_on_different_hosts_are_different_sources(c: Case) -> None:
    # workstation logons write 127.0.0.1 or no address: one host each, not one shared source
    for i in range(12):
        login(c, T0 + minutes(i), f"user{i:02d}", "127.0.0.1", "failure", "windows", 4625, host=f"ws{i:02d}")
    assert run(c, "auth.password_spray") == []


# ---- brute force ------------------------------------------------------------------------------


def test_brute_force_on_one_account_fires_and_a_following_success_makes_it_high(c: Case) -> None:
    for i in range(20):
        login(c, T0 + minutes(i / 2), "ops", NL if i % 2 else SG, "failure")
    login(c, T0 + minutes(12), "ops", SG)
    (f,) = run(c, "auth.brute_force")
    assert (f.entity, f.count, f.severity) == ("ops", 20, "high")
    assert f.details["distinct_sources"] == 2 and f.details["success_from"] == SG


def test_a_forgotten_password_on_a_phone_every_30_minutes_is_not_brute_force(c: Case) -> None:
    for i in range(20):
        login(c, T0 + minutes(30 * i), "ops", "10.9.9.9", "failure")
    assert run(c, "auth.brute_force") == []


# ---- failures, then a success from another source ---------------------------------------------


def test_failures_from_one_country_then_success_from_a_new_one_is_critical_for_a_vendor(c: Case) -> None:
    login(c, T0 - timedelta(days=2), "mc.gcook", DE)
    for i in range(4):
        login(c, T0 + minutes(i), "mc.gcook", NL, "failure")
    ok = login(c, T0 + minutes(7), "mc.gcook", SG)
    (f,) = run(c, "auth.failures_then_success")
    assert f.entity == f"mc.gcook from {SG}" and f.severity == "critical" and f.count == 5
    assert f.details["new_source"] is True and f.details["vendor"] == "MeterCo"
    assert f.details["failure_countries"] == ["NL"] and f.details["success_country"] == "SG"
    assert f.evidence[-1]["source_ref"] == ok and f.evidence[-1]["fields"]["outcome"] == "success"
    assert f.ts_first == T0 and f.ts_last == T0 + minutes(7)


def test_typos_then_success_from_the_same_address_are_quiet(c: Case) -> None:
    for i in range(5):
        login(c, T0 + minutes(i), "jsmith", GB, "failure")
    login(c, T0 + minutes(6), "jsmith", GB)
    assert run(c, "auth.failures_then_success") == []


def test_failures_too_long_before_the_success_are_quiet(c: Case) -> None:
    for i in range(4):
        login(c, T0 + minutes(i), "jsmith", NL, "failure")
    login(c, T0 + minutes(90), "jsmith", GB)
    assert run(c, "auth.failures_then_success") == []


# ---- first-seen country / network -------------------------------------------------------------


def test_vendor_from_a_new_country_is_high_and_its_usual_country_is_quiet(c: Case) -> None:
    for d in range(4):
        login(c, T0 + timedelta(days=d), "mc.gcook", DE)
    assert run(c, "auth.new_country") == []
    login(c, T0 + timedelta(days=5), "mc.gcook", SG)
    (f,) = run(c, "auth.new_country")
    assert (f.entity, f.severity) == ("mc.gcook new country SG", "high")
    assert f.details["usual"] == ["DE"] and f.details["logins_before"] == 4


def test_an_employee_in_a_new_country_is_low_and_a_first_ever_login_is_not_new(c: Case) -> None:
    login(c, T0, "jsmith", GB)  # first login: nothing to compare with
    login(c, T0 + timedelta(days=3), "jsmith", FR)
    (f,) = run(c, "auth.new_country")
    assert (f.entity, f.severity) == ("jsmith new country FR", "low")


def test_new_network_needs_history(c: Case) -> None:
    for d in range(4):
        login(c, T0 + timedelta(days=d), "jsmith", GB)
    login(c, T0 + timedelta(days=5), "jsmith", DE)
    (f,) = run(c, "auth.new_network")
    assert f.details["network"] == "AS64502" and f.details["usual"] == ["AS64500"]
    assert run(c, "auth.new_network", {"min_history": 10}) == []


# ---- impossible travel -------------------------------------------------------------------------


def test_germany_then_singapore_two_hours_later_is_impossible(c: Case) -> None:
    login(c, T0, "mc.gcook", DE)
    login(c, T0 + timedelta(hours=2), "mc.gcook", SG)
    (f,) = run(c, "auth.impossible_travel")
    assert f.entity == "mc.gcook DE->SG" and f.severity == "high"
    assert 9000 < f.details["km"] < 11000 and f.details["km_per_hour"] > 4000
    assert len(f.evidence) == 2


def test_a_plausible_trip_and_the_same_country_are_quiet(c: Case) -> None:
    login(c, T0, "jsmith", GB)
    login(c, T0 + timedelta(hours=10), "jsmith", FR)  # ~ 700 km in 10 h
    login(c, T0 + timedelta(hours=11), "jsmith", FR)
    assert run(c, "auth.impossible_travel") == []


def test_ignored_networks_are_skipped(c: Case) -> None:
    login(c, T0, "mc.gcook", DE)
    login(c, T0 + timedelta(hours=2), "mc.gcook", SG)
    assert run(c, "auth.impossible_travel", {"ignore_networks": ["AS64511"]}) == []


# ---- usual hours -------------------------------------------------------------------------------


def _day_staff(c: Case, days: int = 30) -> None:
    for d in range(days):
        for u, h in (("alice", 8), ("bob", 9), ("carol", 10)):
            login(c, utc(2026, 4, 1, h, 5) + timedelta(days=d), u, "10.1.0.5")


def test_a_login_at_3am_by_a_day_worker_is_unusual(c: Case) -> None:
    _day_staff(c)
    odd = login(c, utc(2026, 4, 20, 3, 12), "alice", "10.1.0.5")
    (f,) = run(c, "auth.off_hours")
    assert f.entity == "alice 2026-04-20" and f.severity == "low"
    assert [e["source_ref"] for e in f.evidence] == [odd]
    assert f.details["hours_utc"] == [3] and f.details["usual_hours_utc"][0] == 8


def test_a_night_shift_operator_at_night_is_usual(c: Case) -> None:
    for d in range(30):
        login(c, utc(2026, 4, 1, 2, 30) + timedelta(days=d), "nightop", "10.1.0.9")
    assert run(c, "auth.off_hours") == []


def test_service_and_network_logons_do_not_count_as_a_person_working(c: Case) -> None:
    _day_staff(c)
    login(c, utc(2026, 4, 20, 3, 12), "alice", "10.1.0.5", source="windows", event_id=4624, logon_type="3")
    assert run(c, "auth.off_hours") == []


# ---- settings ----------------------------------------------------------------------------------


def test_settings_errors_name_the_file_and_key(tmp_path: Path) -> None:
    p = tmp_path / "cfg.yaml"
    p.write_text("auth.password_spray:\n  min_acounts: 5\n")
    with pytest.raises(SettingsError, match=r"cfg.yaml: auth.password_spray.min_acounts: unknown setting"):
        load_settings(p)
    p.write_text("auth.password_spray:\n  min_accounts: many\n")
    with pytest.raises(SettingsError, match=r"min_accounts: expected int, got 'many'"):
        load_settings(p)
    p.write_text("auth.spray:\n  min_accounts: 5\n")
    with pytest.raises(SettingsError, match=r"unknown analytic 'auth.spray'"):
        load_settings(p)
    p.write_text("auth.password_spray:\n  min_accounts: 5\n")
    assert load_settings(p)["auth.password_spray"]["min_accounts"] == 5


def test_disabled_and_empty_analytics_say_why_they_did_not_run(c: Case) -> None:
    s = load_settings()
    s["auth.brute_force"]["enabled"] = False
    res = run_analytics(c, s, only=["auth"])
    reasons = {r.name: r.skipped_reason for r in res.runs}
    assert reasons["auth.brute_force"] == "disabled in settings"
    assert reasons["auth.password_spray"] == "no rows in auth"


def test_a_host_name_in_src_ip_is_not_a_public_address(c: Case) -> None:
    # a reader that puts a workstation name in src_ip: ip_geo keeps it as "not internal" (unknown),
    # which must not make it a public source for public_success_only
    for i in range(4):
        login(c, T0 + minutes(i), "jsmith", NL, "failure")
    login(c, T0 + minutes(6), "jsmith", "WKS-0142")
    assert run(c, "auth.failures_then_success") == []
    (f,) = run(c, "auth.failures_then_success", {"public_success_only": False})
    assert f.entity == "jsmith from WKS-0142"


def test_successes_at_the_same_time_from_two_sources_are_in_a_fixed_order(c: Case) -> None:
    for i in range(4):
        login(c, T0 + minutes(i), "jsmith", NL, "failure")
    login(c, T0 + minutes(6), "jsmith", SG)
    login(c, T0 + minutes(6), "jsmith", FR)
    assert [f.entity for f in run(c, "auth.failures_then_success")] == [f"jsmith from {FR}", f"jsmith from {SG}"]
