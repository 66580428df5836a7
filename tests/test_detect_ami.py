"""AMI head-end / DMS analytics: each fires on its attack shape and stays quiet on its benign twin
(approved maintenance with a ticket, a fleet-wide read, a routine small disconnect batch, a vendor
login inside its change window, ...). Also the change calendar reader and the vendor-export mapping.

Audit rows are written straight into a real case (as the AMI reader would). The week used:
Monday 2026-04-13 10:00 UTC is working time, Sunday 2026-04-19 02:00 UTC is not.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gridhunt.case import Case
from gridhunt.detect import run_analytics
from gridhunt.detect.base import MAX_EVIDENCE_ROWS
from gridhunt.detect.settings import load_settings
from gridhunt.ingest import ami, context, netlog
from tests.conftest import TEST_DATA, rows, run_analytic, sniff_and_ingest, utc

DATA = TEST_DATA / "ami_analytics"
MON = utc(2026, 4, 13, 10, 0)  # Monday, working hours
SUN = utc(2026, 4, 19, 2, 0)  # Sunday night
JUMP, ADMIN_WS, HEADEND, PUBLIC = "10.30.0.10", "10.10.20.114", "10.50.0.10", "198.51.100.77"
_ref = iter(range(1, 10**9))


@pytest.fixture
def c(tmp_path: Path) -> Case:
    case = Case.open(tmp_path / "c.duckdb")
    case.con.executemany(
        "INSERT INTO zones (name, cidrs, level, source_file, source_ref) VALUES (?, ?, ?, 'zones.yaml', ?)",
        [
            ("it", ["10.10.0.0/16"], 1, "zones[0]"),
            ("vendor-access", ["10.30.0.0/16"], 2, "zones[1]"),
            ("ot-control", ["10.40.0.0/16"], 3, "zones[2]"),
            ("ami", ["10.50.0.0/16"], 3, "zones[3]"),
        ],
    )
    case.con.executemany(
        "INSERT INTO vendor_access (vendor, kind, identifier) VALUES ('MeterCo', ?, ?)",
        [("vpn_account", "mc.gcook"), ("service_account", "svc_meterco"), ("api_token", "tok-headend-01")],
    )
    yield case
    case.close()


def rec(
    c: Case,
    ts: datetime,
    user: str,
    action: str,
    src_ip: str | None = ADMIN_WS,
    target_type: str | None = None,
    target_id: str | None = None,
    count: int | None = 1,
    params: dict[str, Any] | None = None,
    result: str = "ok",
    system: str = "headend",
) -> str:
    ref = f"line {next(_ref)}"
    c.con.execute(
        'INSERT INTO ami_audit (ts, system, "user", src_ip, action, target_type, target_id, target_count, params, '
        "result, source_file, source_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'headend_audit.jsonl', ?)",
        [ts, system, user, src_ip, action, target_type, target_id, count, json.dumps(params or {}), result, ref],
    )
    return ref


def window(c: Case, start: datetime, hours: float, ticket: str, system: str | None = "ami-headend") -> None:
    c.con.execute(
        "INSERT INTO change_windows VALUES (?, ?, ?, ?, 'test window', 'change_windows.csv', ?)",
        [start, start + timedelta(hours=hours), ticket, system, f"line {next(_ref)}"],
    )


def run(c: Case, name: str, settings: dict | None = None, notes: list[str] | None = None):
    res = run_analytic(c, name, settings)
    if notes is not None:
        notes.extend(res.notes)
    return res.findings


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def days(n: float) -> timedelta:
    return timedelta(days=n)


# ---- change calendar ----------------------------------------------------------------------------


def test_change_calendar_rows_and_errors(c: Case) -> None:
    path = DATA / "change_windows.csv"
    assert context.sniff(path.read_bytes(), path) == "context_change_windows"
    res = sniff_and_ingest(context, c, path)
    assert (res.format, res.records_ok, res.records_bad) == ("context_change_windows", 3, 4)
    assert res.errors == [
        ("line 4", "start: bad timestamp 'not-a-time'"),
        ("line 5", "end: 2026-04-21T03:00:00Z is before start 2026-04-21T05:00:00Z"),
        ("line 6", "ticket: missing"),
        ("line 7", "expected 5 columns, got 4"),
    ]
    got = rows(
        c,
        "SELECT window_start, window_end, ticket, system, description, source_ref FROM change_windows "
        "ORDER BY window_start",
    )
    assert got[0] == (
        utc(2026, 4, 19, 2),
        utc(2026, 4, 19, 5),
        "CHG-1606",
        "ami-meters",
        "Meter firmware 2.9.8 rollout, feeders batch 1",
        "line 2",
    )
    assert got[1][2:4] == ("CHG-1610", "mdm")  # system lower-cased
    assert got[2][:3] == (utc(2026, 4, 22, 22), utc(2026, 4, 22, 23, 59), "CHG-1608")  # naive = UTC


def test_change_calendar_header_without_ticket_is_not_a_calendar(tmp_path: Path) -> None:
    path = tmp_path / "windows.csv"
    path.write_text("start,end,system\n2026-04-19T02:00:00Z,2026-04-19T05:00:00Z,dms\n")
    assert context.sniff(path.read_bytes(), path) is None


# ---- vendor export mapping ----------------------------------------------------------------------


def test_vendor_export_is_read_through_its_mapping(c: Case) -> None:
    path, mapping = DATA / "headend-export.csv", DATA / "headend-export.csv.mapping.yaml"
    assert ami.sniff(path.read_bytes(), path) == "ami_csv"
    assert ami.sniff(mapping.read_bytes(), mapping) == "ami_mapping"
    skipped = ami.ingest(c, mapping, "ami_mapping")
    assert skipped.skipped_reason is not None and "header mapping" in skipped.skipped_reason
    res = ami.ingest(c, path, "ami_csv")
    assert (res.records_ok, res.records_bad) == (4, 1)
    assert res.errors == [("line 6", "action: unknown value 'Reboot'")]  # a word the mapping does not give
    got = rows(c, 'SELECT system, "user", action, target_type, target_id, target_count, params, result FROM ami_audit')
    assert got == [
        ("headend", "mc.gcook", "login", None, None, None, None, "ok"),
        ("headend", "mc.gcook", "create_user", "user", "meterco_support8", 1, None, "ok"),
        (
            "headend",
            "meterco_support8",
            "EndDeviceControl:disconnect",
            "meter",
            "MTR-000123",
            1,
            '{"job":"bulk"}',
            "ok",
        ),
        ("mdm", "meterco_support8", "EndDeviceControl:connect", "meter", "MTR-000124", 1, None, "failed"),
    ]
    assert rows(c, 'SELECT "user", outcome, source FROM auth') == [("mc.gcook", "success", "ami")]


def test_export_without_its_mapping_is_not_ours_and_bad_mapping_entries_are_reported(c: Case, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    shutil.copy(DATA / "headend-export.csv", path)
    assert ami.sniff(path.read_bytes(), path) is None
    mapping = tmp_path / "ami-mapping.yaml"  # the folder-wide name
    text = (DATA / "headend-export.csv.mapping.yaml").read_text()
    text = text.replace("Failure: failed}", "Failure: failed, Partial: maybe}")
    mapping.write_text(text + "Comment: remarks\n")
    assert ami.sniff(path.read_bytes(), path) == "ami_csv"
    res = ami.ingest(c, path, "ami_csv")
    assert res.errors[:2] == [
        ("ami-mapping.yaml: Comment", "unknown target column 'remarks'"),
        ("ami-mapping.yaml: values.result.Partial", "unknown result 'maybe'"),
    ]
    assert res.records_ok == 4
    # a firewall mapping is not ours (it names no AMI-only column)
    fw = tmp_path / "fw.mapping.yaml"
    fw.write_text("Time: ts\nAct: action\nSrc: src_ip\nDst: dst_ip\n")
    assert ami.sniff(fw.read_bytes(), fw) is None
    assert netlog.sniff(fw.read_bytes(), fw) == "netlog_mapping"


# ---- new accounts and role grants ----------------------------------------------------------------


def test_new_admin_created_at_night_by_a_vendor_account_is_critical(c: Case) -> None:
    ref = rec(c, SUN, "mc.gcook", "create_user", JUMP, "user", "meterco_support8")
    rec(c, SUN + minutes(1), "mc.gcook", "grant_role", JUMP, "user", "meterco_support8", params={"role": "admin"})
    rec(c, SUN + minutes(5), "meterco_support8", "login", JUMP)
    (f,) = run(c, "ami.new_account")
    assert (f.rule_id, f.entity, f.severity) == ("ami.new_account", "meterco_support8 created by mc.gcook", "critical")
    assert f.attack == ["T1136", "T0859"]
    assert f.details["vendor"] == "MeterCo" and f.details["off_hours"] is True
    assert f.details["ticket_status"] == "no ticket" and f.details["roles_granted"] == ["admin"]
    assert f.details["actions_by_new_account"] == 1
    (ev,) = f.evidence
    assert ev["source_ref"] == ref and ev["source_file"] == "headend_audit.jsonl"
    assert ev["fields"] == {
        "user": "mc.gcook",
        "system": "headend",
        "src_ip": JUMP,
        "action": "create_user",
        "target_type": "user",
        "target_id": "meterco_support8",
        "target_count": 1,
        "result": "ok",
    }


def test_new_account_under_an_approved_ticket_is_quiet_and_a_plain_one_is_medium(c: Case) -> None:
    window(c, MON - minutes(30), 2, "CHG-2001", "ami-headend")
    rec(c, MON, "adm-klopez", "create_user", ADMIN_WS, "user", "ami.newhire", params={"ticket": "CHG-2001"})
    assert run(c, "ami.new_account") == []
    rec(c, MON + days(1), "adm-klopez", "create_user", ADMIN_WS, "user", "ami.other")
    (f,) = run(c, "ami.new_account")
    assert f.entity == "ami.other created by adm-klopez" and f.severity == "medium"  # low + no ticket


def test_role_grant_privileged_at_night_fires_and_one_inside_the_window_is_quiet(c: Case) -> None:
    rec(c, SUN, "mc.gcook", "grant_role", JUMP, "user", "meterco_support8", params={"role": "headend-admin"})
    (f,) = run(c, "ami.role_grant")
    assert (f.entity, f.severity) == ("meterco_support8 +headend-admin", "critical")
    assert f.details["privileged"] is True and f.details["granted_by"] == "mc.gcook"
    # a reader role on a weekday with no ticket: low + no ticket
    rec(c, MON, "adm-klopez", "grant_role", ADMIN_WS, "user", "ami.bjackson", params={"role": "reader"})
    # the same admin role inside an 'ami' window (no ticket on the record: the window for the system approves)
    window(c, MON + days(1), 3, "CHG-2002", "ami")
    rec(c, MON + days(1) + minutes(10), "adm-klopez", "grant_role", ADMIN_WS, "user", "x", params={"role": "admin"})
    got = run(c, "ami.role_grant")
    assert [(f.entity, f.severity) for f in got] == [
        ("ami.bjackson +reader", "medium"),
        ("meterco_support8 +headend-admin", "critical"),
    ]


# ---- logins ----------------------------------------------------------------------------------------


def test_login_from_outside_the_admin_network_fires_and_admin_and_vendor_jump_logins_do_not(c: Case) -> None:
    rec(c, MON, "ami.bjackson", "login", ADMIN_WS)  # operator at the desk (it zone)
    rec(c, MON, "dms.pjackson", "login", "10.40.1.11", system="dms")  # control room HMI (ot-control)
    rec(c, MON, "mc.gcook", "login", JUMP)  # the vendor on its jump host
    rec(c, MON, "ami.bjackson", "login", "10.20.0.7", result="failed")  # failures are auth's business
    attack = rec(c, SUN, "meterco_support8", "login", JUMP)  # not a register account, on the vendor jump host
    rec(c, SUN + minutes(1), "meterco_support8", "login", JUMP)
    (f,) = run(c, "ami.login_outside_admin_network")
    assert (f.entity, f.count, f.severity) == ("meterco_support8 from 10.30.0.10", 2, "high")  # + off-hours
    assert f.evidence[0]["source_ref"] == attack
    assert f.details["vendor_zone"] is True and f.details["public"] is False
    assert f.details["admin_networks"] == "10.10.0.0/16, 10.40.0.0/16, 10.50.0.0/16"


def test_login_outside_admin_network_public_source_and_admin_cidrs_setting(c: Case) -> None:
    rec(c, MON, "ami.bjackson", "login", PUBLIC)
    (f,) = run(c, "ami.login_outside_admin_network")
    assert f.severity == "high" and f.details["public"] is True  # medium + public
    # a narrower admin network: the operator's own desk is now outside it
    got = run(c, "ami.login_outside_admin_network", {"admin_cidrs": ["10.10.5.0/24"]})
    assert [g.entity for g in got] == ["ami.bjackson from 198.51.100.77"]
    rec(c, MON, "ami.nreyes", "login", ADMIN_WS)
    got = run(c, "ami.login_outside_admin_network", {"admin_cidrs": ["10.10.5.0/24"]})
    assert [g.entity for g in got] == ["ami.bjackson from 198.51.100.77", "ami.nreyes from 10.10.20.114"]


def test_admin_zone_drawn_by_assets_counts_their_addresses(c: Case) -> None:
    c.con.execute(
        "INSERT INTO assets (asset_id, hostname, ips, zone, source_file, source_ref) VALUES "
        "('A-1', 'soc-ws1', ['172.16.9.21'], 'soc', 'assets.yaml', 'assets[0]'), "
        "('A-2', 'it-ws7', ['10.10.20.114'], 'it', 'assets.yaml', 'assets[1]')"
    )
    rec(c, MON, "ami.bjackson", "login", "172.16.9.21")
    rec(c, MON, "ami.nreyes", "login", "172.16.9.22")
    got = run(c, "ami.login_outside_admin_network", {"admin_zones": ["it", "soc"]})
    assert [g.entity for g in got] == ["ami.nreyes from 172.16.9.22"]
    # the it asset sits inside the it zone's CIDR: only the network is named
    assert got[0].details["admin_networks"] == "10.10.0.0/16, 172.16.9.21/32"


def test_login_outside_admin_network_without_an_admin_network_says_so(c: Case) -> None:
    rec(c, MON, "ami.bjackson", "login", PUBLIC)
    notes: list[str] = []
    assert run(c, "ami.login_outside_admin_network", {"admin_zones": ["corp-admin"]}, notes) == []
    assert any("no admin network" in n for n in notes)


def test_vendor_login_at_night_outside_a_window_fires_and_inside_its_window_does_not(c: Case) -> None:
    window(c, SUN - days(7), 3, "CHG-1600", "ami-collectors")
    rec(c, SUN - days(7) + minutes(5), "mc.gcook", "login", JUMP)  # planned night work, inside the window
    rec(c, MON, "mc.gcook", "login", JUMP)  # daytime support
    rec(c, MON + minutes(3), "mc.gcook", "EndDeviceControl:ping", JUMP, "meter", "M1")  # another day's action
    attack = rec(c, SUN + minutes(5), "mc.gcook", "login", JUMP)
    rec(c, SUN + minutes(7), "mc.gcook", "create_user", JUMP, "user", "x")
    rec(c, SUN, "ami.bjackson", "login", ADMIN_WS)  # not a vendor account
    (f,) = run(c, "ami.vendor_login_outside_change_window")
    assert (f.entity, f.severity, f.evidence[0]["source_ref"]) == ("mc.gcook 2026-04-19", "high", attack)
    assert f.details["actions_that_day"] == ["create_user"] and f.details["vendor"] == "MeterCo"
    # where every vendor session needs a window, the daytime one fires too, at the default severity
    got = run(c, "ami.vendor_login_outside_change_window", {"allow_work_hours": False})
    assert [(g.entity, g.severity) for g in got] == [("mc.gcook 2026-04-13", "low"), ("mc.gcook 2026-04-19", "high")]


def test_work_hours_setting_moves_what_counts_as_off_hours(c: Case) -> None:
    rec(c, MON, "mc.gcook", "login", JUMP)
    assert run(c, "ami.vendor_login_outside_change_window") == []
    # 10:00 UTC is 19:00 in Tokyo: outside 08:00-18:00 there
    tokyo = {"timezone": "Asia/Tokyo", "days": [1, 2, 3, 4, 5], "hours": [8, 18]}
    (f,) = run(c, "ami.vendor_login_outside_change_window", {"work_hours": tokyo})
    assert f.details["off_hours"] is True


def test_bad_work_hours_is_an_error_naming_the_setting(c: Case) -> None:
    rec(c, MON, "mc.gcook", "login", JUMP)
    s = load_settings()
    s["ami.vendor_login_outside_change_window"]["work_hours"] = {
        "timezone": "Mars/Olympus",
        "days": [1],
        "hours": [8, 18],
    }
    s["ami.new_account"]["work_hours"] = {"timezone": "UTC", "days": [0], "hours": [8, 18]}
    rec(c, MON, "mc.gcook", "create_user", JUMP, "user", "x")
    res = run_analytics(c, s, only=["ami.vendor_login_outside_change_window", "ami.new_account"])
    errors = {r.name: r.error for r in res.runs}
    assert "work_hours.timezone: unknown time zone 'Mars/Olympus'" in errors["ami.vendor_login_outside_change_window"]
    assert "work_hours.days: expected ISO weekday numbers" in errors["ami.new_account"]


def test_work_hours_across_midnight_is_an_error_not_all_day_off_hours(c: Case) -> None:
    # [22, 6] used to pass validation and match no hour at all: every record was off-hours
    rec(c, MON, "mc.gcook", "create_user", JUMP, "user", "x")
    s = load_settings()
    s["ami.new_account"]["work_hours"] = {"timezone": "UTC", "days": [1, 2, 3, 4, 5], "hours": [22, 6]}
    (r,) = run_analytics(c, s, only=["ami.new_account"]).runs
    assert "work_hours.hours: from must be before to" in (r.error or "")


# ---- configuration changes and firmware ------------------------------------------------------------


def test_config_changes_at_night_without_ticket_are_one_critical_finding(c: Case) -> None:
    rec(c, SUN - minutes(20), "mc.gcook", "create_user", JUMP, "user", "meterco_support8")
    for i, (key, old, new) in enumerate(
        [("disconnect.require_confirmation", "true", "false"), ("audit.syslog_forwarding", "true", "false")]
    ):
        rec(
            c,
            SUN + minutes(i),
            "meterco_support8",
            "config_change",
            JUMP,
            "config",
            key,
            params={"old": old, "new": new},
        )
    (f,) = run(c, "ami.config_change")
    assert (f.entity, f.count, f.severity) == ("meterco_support8 on headend 2026-04-19T02:00", 2, "critical")
    assert f.attack == ["T0836", "T1562"]
    assert f.details["changes"][0] == {
        "key": "disconnect.require_confirmation",
        "target_type": "config",
        "old": "true",
        "new": "false",
    }
    assert f.details["sensitive_keys"] == ["audit.syslog_forwarding", "disconnect.require_confirmation"]
    assert f.details["vendor"] == "MeterCo"  # made by a vendor account


def test_approved_changes_and_dms_switching_are_quiet_but_an_unknown_ticket_is_not(c: Case) -> None:
    window(c, MON, 2, "CHG-1610", "mdm")
    rec(c, MON + minutes(5), "adm-klopez", "config_change", "10.50.0.20", "config", "mdm.db.maintenance",
        params={"ticket": "CHG-1610"}, system="mdm")  # fmt: skip
    # the vendor's planned change quotes its ticket, whose window is for the collectors: the ticket approves
    window(c, SUN, 3, "CHG-1612", "ami-collectors")
    rec(c, SUN + minutes(20), "mc.gcook", "config_change", JUMP, "config", "collector.upload_interval",
        params={"change": "CHG-1612"}, system="dms")  # fmt: skip
    rec(c, MON, "dms.pjackson", "config_change", "10.40.1.11", "switch", "SW-1234",
        params={"operation": "open", "switching_order": "SO-55120"}, system="dms")  # fmt: skip
    assert run(c, "ami.config_change") == []
    rec(c, MON + days(1), "adm-klopez", "config_change", ADMIN_WS, "config", "tariff.table", params={"ticket": "CHG-9"})
    rec(c, MON + days(2), "adm-klopez", "config_change", ADMIN_WS, "config", "x", params={"ticket": "CHG-1610"})
    got = run(c, "ami.config_change")
    assert [(g.severity, g.details["ticket_status"]) for g in got] == [
        ("low", ["ticket not in the change calendar"]),
        ("low", ["ticket outside its change window"]),
    ]


def test_firmware_push_without_approval_fires_and_the_ticketed_push_does_not(c: Case) -> None:
    window(c, SUN, 3, "CHG-1606", "ami-meters")
    rec(c, SUN + minutes(20), "svc_meterco", "firmware_push", HEADEND, "meter", "FDR-1,FDR-2", 5000,
        {"ticket": "CHG-1606", "channel": "updates.meterco.example", "change": "meter_fw"})  # fmt: skip
    assert run(c, "ami.firmware_push") == []
    ref = rec(c, SUN + days(1), "svc_meterco", "firmware_push", HEADEND, "collector", "ALL", 24, {"version": "4.2.2"})
    (f,) = run(c, "ami.firmware_push")
    assert (f.entity, f.severity, f.evidence[0]["source_ref"]) == ("svc_meterco -> collector ALL", "critical", ref)
    assert f.details["devices"] == 24 and f.details["image"] == "4.2.2" and f.attack[0] == "T0839"


# ---- bulk meter control ------------------------------------------------------------------------------


def _fleet_read(c: Case, ts: datetime, n: int = 50_000) -> None:
    rec(c, ts, "svc_mdm", "bulk_job", "10.50.0.20", "meter", "ALL", n, {"job": "read", "schedule": "daily-billing"},
        system="mdm")  # fmt: skip


def _disconnects(c: Case, user: str, start: datetime, n: int, every_s: float, src: str = ADMIN_WS) -> list[str]:
    return [
        rec(
            c,
            start + timedelta(seconds=k * every_s),
            user,
            "EndDeviceControl:disconnect",
            src,
            "meter",
            f"M{k:06d}",
            params={"job": "bulk"},
        )  # fmt: skip
        for k in range(n)
    ]


def test_night_bulk_disconnect_fires_on_rate_and_fleet_share(c: Case) -> None:
    _fleet_read(c, SUN - days(1))
    job = rec(c, SUN, "meterco_support8", "bulk_job", JUMP, "feeder", "FDR-10,FDR-11", 1200,
              {"job": "disconnect", "priority": "immediate"})  # fmt: skip
    refs = _disconnects(c, "meterco_support8", SUN, 1200, 0.4, HEADEND)
    (f,) = run(c, "ami.bulk_control")
    assert (f.rule_id, f.count, f.severity) == ("ami.bulk_control", 1201, "critical")  # high + night
    assert f.attack[:2] == ["T0831", "T0813"]
    d = f.details
    assert (d["meters"], d["peak_per_window"], d["fleet_size"], d["share_of_fleet"]) == (1200, 1200, 50_000, 0.024)
    assert d["fleet_size_from"] == "largest fleet-wide bulk read"
    # a new account has no baseline: the absolute limits judge it
    assert d["reasons"] == ["rate above the absolute threshold", "share of fleet above the absolute threshold"]
    assert (d["bursts_before"], d["baseline_peak_per_window"]) == (0, 0)
    assert d["actions"] == {"EndDeviceControl:disconnect": 1200, "bulk_job": 1}
    # the job record and the first commands, up to the evidence cap (count stays exact)
    assert f.count == 1201 and len(f.evidence) == MAX_EVIDENCE_ROWS
    assert {e["source_ref"] for e in f.evidence} <= {job, *refs} and job in {e["source_ref"] for e in f.evidence}


def test_fleet_wide_read_and_routine_small_batches_by_the_usual_operator_are_quiet(c: Case) -> None:
    for d in range(5):
        _fleet_read(c, MON - days(d))  # 50,000 meters read every night: a read, not a command
    # the collections team's Monday batch: 60 non-payment disconnects in 10 min (its first in the
    # evidence: no baseline yet, and under the absolute limits)
    _disconnects(c, "ami.collections", MON - days(7), 60, 10)
    # this week's batch is a little larger, but within 3x its baseline
    _disconnects(c, "ami.collections", MON, 90, 6)
    # an operator's scattered single disconnects with work orders
    for i in range(8):
        rec(c, MON + minutes(40 * i), "ami.bjackson", "EndDeviceControl:disconnect", ADMIN_WS, "meter", f"N{i}",
            params={"reason": "non-payment", "work_order": f"WO-{i}"})  # fmt: skip
    assert run(c, "ami.bulk_control") == []
    # the same team suddenly doing 300 in one window: above 3x its own baseline, under 500
    _disconnects(c, "ami.collections", MON + days(1), 300, 1.5)
    (f,) = run(c, "ami.bulk_control")
    assert f.details["reasons"] == ["rate above the account's baseline", "share of fleet above the account's baseline"]
    assert (f.details["baseline_peak_per_window"], f.details["peak_per_window"]) == (90, 300)
    assert (f.details["bursts_before"], f.details["share_of_fleet"]) == (2, 0.006)
    assert f.severity == "high"  # a weekday morning, not a vendor account


def test_approved_bulk_load_limit_is_quiet_and_fleet_size_falls_back_to_the_inventory(c: Case) -> None:
    window(c, MON, 4, "CHG-3001", "ami")
    rec(c, MON + minutes(5), "ami.dr", "bulk_job", ADMIN_WS, "meter", "DR-GROUP-1", 800,
        {"job": "load_limit", "ticket": "CHG-3001"})  # fmt: skip
    assert run(c, "ami.bulk_control") == []
    rec(c, MON + days(1), "ami.dr", "bulk_job", ADMIN_WS, "meter", "DR-GROUP-2", 300, {"job": "load_limit"})
    c.con.execute(
        "INSERT INTO assets (asset_id, role, source_file, source_ref) SELECT 'M' || i, 'smart_meter', "
        "'assets.yaml', 'assets[' || i || ']' FROM range(10000) t(i)"
    )
    c.con.execute("INSERT INTO assets (asset_id, role) VALUES ('MDM', 'meter_data_management')")
    (f,) = run(c, "ami.bulk_control")
    assert (f.details["fleet_size"], f.details["fleet_size_from"], f.details["share_of_fleet"]) == (
        10_000,
        "meters in the asset inventory",
        0.03,
    )
    # the approved 800 is its baseline, so only the fleet share fires
    assert f.details["reasons"] == ["share of fleet above the absolute threshold"]
    assert f.details["baseline_peak_per_window"] == 800
    (f,) = run(c, "ami.bulk_control", {"fleet_size": 12_000})
    assert (f.details["fleet_size_from"], f.details["share_of_fleet"]) == ("setting fleet_size", 0.025)
    assert run(c, "ami.bulk_control", {"fleet_size": 1_000_000}) == []


# ---- commands outside change windows -----------------------------------------------------------------


def test_unapproved_command_batch_fires_and_the_same_batch_in_its_window_does_not(c: Case) -> None:
    window(c, SUN, 3, "CHG-1606", "ami-meters")
    _disconnects(c, "ami.collections", SUN + minutes(10), 60, 5)  # inside an 'ami-*' window
    # a busy operator: a work-order disconnect every minute all morning (240 meters, never 50 in 10 min)
    for i in range(240):
        rec(c, MON + minutes(i), "ami.bjackson", "EndDeviceControl:disconnect", ADMIN_WS, "meter", f"N{i}",
            params={"work_order": f"WO-{i}"})  # fmt: skip
    rec(c, MON, "ami.bjackson", "EndDeviceControl:ping", ADMIN_WS, "meter", "M1")
    assert run(c, "ami.command_outside_change_window") == []
    refs = _disconnects(c, "ami.collections", SUN + days(1), 60, 5)
    (f,) = run(c, "ami.command_outside_change_window")
    assert (f.count, f.details["meters"], f.details["peak_per_window"]) == (60, 60, 60)
    assert f.severity == "critical"  # medium + night + no ticket
    assert [e["source_ref"] for e in f.evidence] == refs
    assert f.details["actions"] == {"EndDeviceControl:disconnect": 60}


# ---- new source address ------------------------------------------------------------------------------


def _hourly_exports(c: Case, start: datetime, hours: int, src: str, token: str = "tok-headend-01") -> None:
    for h in range(hours):
        rec(c, start + timedelta(hours=h), "svc_meterco", "bulk_job", src, "meter", "ALL", 50_000,
            {"job": "export_reads", "auth": "api_token", "token_id": token})  # fmt: skip


def test_api_token_from_a_new_address_fires(c: Case) -> None:
    _hourly_exports(c, MON - days(3), 48, "203.0.113.40")
    refs = [
        rec(
            c,
            MON + timedelta(hours=h),
            "svc_meterco",
            "bulk_job",
            PUBLIC,
            "meter",
            "ALL",
            50_000,
            {"job": "export_reads", "auth": "api_token", "token_id": "tok-headend-01"},
        )  # fmt: skip
        for h in (0, 5)
    ]
    (f,) = run(c, "ami.new_source_ip")
    assert (f.entity, f.count, f.severity) == ("svc_meterco from 198.51.100.77", 2, "critical")  # vendor + public
    assert [e["source_ref"] for e in f.evidence] == refs
    assert f.details["usual_src_ips"] == ["203.0.113.40"] and f.details["records_before"] == 48
    assert f.details["token_ids"] == ["tok-headend-01"]


def test_new_address_benign_twins_are_quiet(c: Case) -> None:
    _hourly_exports(c, MON - days(3), 48, "203.0.113.40")
    # an approved firmware push from the head-end itself
    window(c, MON, 3, "CHG-1594", "ami-headend")
    rec(c, MON + minutes(20), "svc_meterco", "firmware_push", HEADEND, "config", "headend", 1, {"ticket": "CHG-1594"})
    # a login from a new address with no command after it
    rec(c, MON, "svc_meterco", "login", "10.10.9.9")
    # a brand-new account has no history to be new against
    rec(c, MON, "meterco_support8", "login", JUMP)
    _disconnects(c, "meterco_support8", MON, 5, 1, HEADEND)
    assert run(c, "ami.new_source_ip") == []


# ---- theme ------------------------------------------------------------------------------------------------


def test_every_ami_analytic_has_settings_and_runs_on_an_empty_case(c: Case) -> None:
    s = load_settings()
    names = [n for n in s if n.startswith("ami.")]
    assert len(names) == 9 and all("work_hours" in s[n] for n in names)
    res = run_analytics(c, s, only=["ami"])
    assert {r.name for r in res.runs} == set(names)
    assert all(r.skipped_reason == "no rows in ami_audit" for r in res.runs)
    rec(c, MON, "ami.bjackson", "login", ADMIN_WS)
    res = run_analytics(c, s, only=["ami"])
    assert all(r.error is None for r in res.runs), [r.error for r in res.runs]
    assert any("no change calendar" in n for n in res.notes)


def test_host_names_and_scoped_ipv6_in_src_ip_do_not_break_the_theme(c: Case) -> None:
    # src_ip holding a host name used to raise in prepare() and stop every analytic of every theme
    rec(c, SUN, "meterco_support8", "create_user", "hmi-07.corp", target_type="user", target_id="x")
    rec(c, SUN, "meterco_support8", "login", "hmi-07.corp")
    rec(c, SUN, "meterco_support8", "login", "fe80::1%eth0")
    assert [f.entity for f in run(c, "ami.new_account")] == ["x created by meterco_support8"]
    found = run(c, "ami.login_outside_admin_network")
    want = ["meterco_support8 from fe80::1%eth0", "meterco_support8 from hmi-07.corp"]
    assert sorted(f.entity for f in found) == want
    assert all(f.details.get("public") is not True for f in found)


def test_a_theme_whose_prepare_fails_reports_it_and_the_other_themes_still_run(
    c: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gridhunt.detect import ami as ami_theme

    def broken(ctx: Any) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(ami_theme, "prepare", broken)
    rec(c, SUN, "meterco_support8", "create_user", target_type="user", target_id="x")
    c.con.execute(
        'INSERT INTO auth (ts, "user", src_ip, outcome, source, source_file, source_ref) '
        "VALUES (?, 'jsmith', '10.0.0.5', 'success', 'vpn', 'vpn.log', 'line 1')",
        [SUN],
    )
    res = run_analytics(c, load_settings(), only=["ami.new_account", "auth.brute_force"])
    runs = {r.name: r for r in res.runs}
    assert runs["ami.new_account"].error == "prepare: ValueError: boom"
    assert runs["auth.brute_force"].error is None
