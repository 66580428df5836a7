"""Asset reconciliation and coverage: each assets.* analytic fires on its shape and stays quiet on its
twin, host names match short / FQDN / NetBIOS, the coverage matrix, the zone lookup, the CLI.

Inventory, zones and vendor register are tests/data/assets/*.yaml read by the real context reader;
evidence rows are written straight into the case (as the Zeek, firewall, EVTX and VPN readers would)."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridhunt.case import Case
from gridhunt.cli import app
from gridhunt.detect import assets, run_analytics, zones
from gridhunt.detect.settings import load_settings
from gridhunt.ingest import context
from tests.conftest import TEST_DATA, run_analytic, utc

DATA = TEST_DATA / "assets"
T0 = utc(2026, 4, 14, 9, 0, 0)
PUBLIC = "198.51.100.10"
SYSMON, SECURITY, PS, SYSTEM = "Microsoft-Windows-Sysmon/Operational", "Security", "Windows PowerShell", "System"
_ref = iter(range(1, 10**9))


def _load(case: Case) -> None:
    for name in ("zones.yaml", "assets.yaml", "vendors.yaml"):
        path = DATA / name
        res = context.ingest(case, path, context.sniff(path.read_bytes(), path))
        assert res.records_bad == 0, res.errors


def conn(c: Case, src: str, dst: str, back: int = 5000, port: int = 443, service: str | None = None,
         source: str = "zeek", minutes: int = 0) -> str:  # fmt: skip
    ref = f"line {next(_ref)}"
    c.con.execute(
        "INSERT INTO conn (ts, src_ip, dst_ip, dst_port, proto, service, bytes_out, bytes_in, source, source_file, "
        "source_ref) VALUES (?, ?, ?, ?, 'tcp', ?, 100, ?, ?, 'conn.log', ?)",
        [T0 + timedelta(minutes=minutes), src, dst, port, service, back, source, ref],
    )
    return ref


def win(c: Case, computer: str, channel: str, event_id: int = 1, minutes: int = 0) -> str:
    ref = str(next(_ref))
    c.con.execute(
        "INSERT INTO win_events_data (event_uid, ts, computer, channel, provider, event_id, record_id, source_file, "
        "source_ref, fields) VALUES (?, ?, ?, ?, 'p', ?, ?, 'events.jsonl', ?, MAP {})",
        [c.next_event_uid(), T0 + timedelta(minutes=minutes), computer, channel, event_id, int(ref), ref],
    )
    return ref


def logon(c: Case, user: str, src_ip: str | None, src_host: str | None, dst_host: str, event_id: int | None = 4624,
          source: str = "windows") -> str:  # fmt: skip
    ref = f"line {next(_ref)}"
    c.con.execute(
        'INSERT INTO auth (ts, "user", src_ip, src_host, dst_host, outcome, source, source_file, source_ref, event_id) '
        "VALUES (?, ?, ?, ?, ?, 'success', ?, 'security.jsonl', ?, ?)",
        [T0, user, src_ip, src_host, dst_host, source, ref, event_id],
    )
    return ref


def world(c: Case) -> dict[str, str]:
    """A small site: every inventory host covered as its test needs; returns record refs by name."""
    refs = {}
    conn(c, "10.1.0.11", PUBLIC)  # ws01
    win(c, "WS01.corp.example", SECURITY, 4624)
    win(c, "WS01.corp.example", SYSMON)
    refs["hmi01_sec"] = win(c, "HMI01.corp.example", SECURITY, 4624)  # inventory: hmi01.corp.example
    win(c, "hmi01.corp.example", SYSMON)
    conn(c, "10.4.0.11", "10.6.0.5", port=502)  # hmi01 -> plc01, answered
    conn(c, "10.4.0.11", "10.4.0.20", back=0)  # hmi01 -> scada01: no answer, scada01 stays unseen
    win(c, "hmi02.corp.example", SYSMON)  # hmi02: Sysmon and flows, no Security log
    conn(c, "10.4.0.12", PUBLIC)
    win(c, "ENGINEERING-WS0", SECURITY, 4624)  # NetBIOS truncation of engineering-ws01
    win(c, "ENGINEERING-WS0", SYSMON)
    conn(c, "10.4.2.11", "10.4.0.11")
    win(c, "jump01", SECURITY, 4624)
    win(c, "jump01", SYSMON)
    conn(c, "10.1.9.10", "10.4.0.11")
    refs["ws02_own"] = conn(c, "10.4.0.99", PUBLIC)  # ws02's listed address is in ot-control, inventory says it
    conn(c, "10.1.0.13", PUBLIC)  # ws03 at its own address ...
    refs["ws03_pair"] = logon(c, "alice", "10.4.0.77", "WS03", "jump01")  # ... and logging on from ot-control
    logon(c, "v-mc-ops", "10.1.9.10", "JUMP01", "ws03")  # a vendor service account logs on to ws03
    return refs


@pytest.fixture
def c(tmp_path: Path) -> Case:
    case = Case.open(tmp_path / "c.duckdb")
    _load(case)
    yield case
    case.close()


def run(c: Case, name: str, settings: dict | None = None):
    return run_analytic(c, name, settings).findings


def report(c: Case, **unknown_settings):
    s = load_settings()
    s["assets.unknown_device"].update(unknown_settings)
    return assets.asset_report(c, s)


# ---- unknown devices ----------------------------------------------------------------------------


def test_unknown_device_fires_per_zone_and_is_high_in_an_ot_zone(c: Case) -> None:
    world(c)
    ot_ref = conn(c, "10.4.0.200", "10.4.0.11", port=502)
    it_ref = conn(c, "10.1.0.200", PUBLIC)
    found = {f.entity: f for f in run(c, "assets.unknown_device")}
    assert set(found) == {"ot-control", "it"}
    ot, it = found["ot-control"], found["it"]
    assert (ot.severity, it.severity) == ("high", "low") and ot.rule_id == "assets.unknown_device"
    assert ot.title == "1 device not in the asset inventory in zone ot-control"
    (dev,) = ot.details["device_list"]
    assert dev["device"] == "10.4.0.200" and dev["logs"] == ["conn"] and ot.details["ot_zone"] is True
    assert [e["source_ref"] for e in ot.evidence] == [ot_ref] and ot.evidence[0]["fields"]["dst_ip"] == "10.4.0.11"
    assert [e["source_ref"] for e in it.evidence] == [it_ref] and it.count == 1
    assert ot.attack == ["T1200"]


def test_an_unlisted_modbus_master_is_unknown_and_a_silent_outstation_is_not(c: Case) -> None:
    world(c)
    ref = f"line {next(_ref)}"
    c.con.execute(
        "INSERT INTO ics (ts, src_ip, dst_ip, dst_port, protocol, function, direction, source_file, source_ref) "
        "VALUES (?, '10.6.0.66', '10.6.0.77', 502, 'modbus', 'WRITE_SINGLE_REGISTER', 'request', 'modbus.log', ?)",
        [T0, ref],
    )
    (f,) = run(c, "assets.unknown_device")
    assert (f.entity, f.severity) == ("field", "high")  # zone field is OT by `kind: ot`
    assert [d["device"] for d in f.details["device_list"]] == ["10.6.0.66"]
    assert f.evidence[0]["source_ref"] == ref and f.evidence[0]["fields"]["log"] == "ics"


def test_known_hosts_scanned_addresses_loopback_and_aliases_are_not_unknown(c: Case) -> None:
    world(c)
    conn(c, "10.1.0.11", "10.4.0.201", back=0)  # a scan of an empty address invents no device
    conn(c, "fe80::1c2d:3e4f", "ff02::1:2", port=547)  # an IPv6 link-local address (DHCPv6 solicit)
    logon(c, "bob", "127.0.0.1", "WS01", "ws01")  # a local logon
    logon(c, "svc_print", "10.1.0.11", "PRINTER-3F", "ws01")  # a name logging on from ws01's address: an alias
    assert run(c, "assets.unknown_device") == []
    rep = report(c)
    assert rep["unknown"] == [] and rep["summary"]["unknown_devices"] == 0


def test_an_unknown_workstation_name_names_its_address_and_a_name_alone_has_no_zone(c: Case) -> None:
    world(c)
    logon(c, "eve", "10.4.0.150", "DESKTOP-7H2KQ9", "hmi01.corp.example")
    win(c, "kiosk7.corp.example", SECURITY, 4624)
    found = {f.entity: f for f in run(c, "assets.unknown_device")}
    assert set(found) == {"ot-control", "(no zone)"}
    (dev,) = found["ot-control"].details["device_list"]
    assert (dev["device"], dev["ips"], dev["names"]) == ("desktop-7h2kq9", ["10.4.0.150"], ["DESKTOP-7H2KQ9"])
    (lone,) = found["(no zone)"].details["device_list"]
    assert lone["device"] == "kiosk7" and lone["names"] == ["kiosk7.corp.example"] and lone["ips"] == []
    assert found["(no zone)"].severity == "low"
    assert found["(no zone)"].evidence[0]["fields"]["host"] == "kiosk7.corp.example"


def test_vpn_clients_are_flagged_and_ignore_settings_leave_devices_out(c: Case) -> None:
    world(c)
    conn(c, PUBLIC, "10.1.0.250", service="vpn", source="vpn")  # a VPN session: client -> tunnel address
    conn(c, "10.1.0.200", PUBLIC)
    win(c, "mfp-2f", SECURITY)
    found = {x.entity: x for x in run(c, "assets.unknown_device")}
    assert set(found) == {"it", "(no zone)"}
    f = found["it"]
    assert f.details["vpn_clients"] == 1
    assert {d["device"]: d["vpn_client"] for d in f.details["device_list"]} == {"10.1.0.200": False,
                                                                              "10.1.0.250": True}  # fmt: skip
    assert {d["device"] for d in report(c)["unknown"]} == {"10.1.0.200", "10.1.0.250", "mfp-2f"}
    left = report(c, vpn_clients=False, ignore_cidrs=["10.1.0.192/26"], ignore_names=["MFP-*"])["unknown"]
    assert left == []


def test_a_bad_ignore_cidr_is_the_analytics_error_not_the_runs(c: Case) -> None:
    world(c)
    s = load_settings()
    s["assets.unknown_device"]["ignore_cidrs"] = ["10.1.0.0/33"]
    res = run_analytics(c, s, only=["assets.unknown_device"])
    (r,) = res.runs
    assert "ignore_cidrs" in r.error and "10.1.0.0/33" in r.error


# ---- zone mismatch ------------------------------------------------------------------------------


def test_zone_mismatch_fires_for_a_listed_address_and_a_logon_from_another_zone(c: Case) -> None:
    refs = world(c)
    found = {f.details["asset_id"]: f for f in run(c, "assets.zone_mismatch")}
    assert set(found) == {"A-04", "A-05"}  # ws01, hmi01 ... are where the inventory says: quiet
    ws02, ws03 = found["A-04"], found["A-05"]
    assert ws02.entity == "ws02 (A-04)" and ws02.title == "ws02 (inventory zone it) seen in zone ot-control"
    assert ws02.severity == "high" and ws02.details["inventory_zone"] == "it"
    (addr,) = ws02.details["addresses"]
    assert (addr["ip"], addr["zone"], addr["how"], addr["placed_by"]) == (
        "10.4.0.99", "ot-control", "inventory address", "cidr")  # fmt: skip
    assert [e["source_ref"] for e in ws02.evidence] == [refs["ws02_own"]]
    (addr,) = ws03.details["addresses"]
    assert (addr["ip"], addr["how"], addr["workstation"]) == ("10.4.0.77", "logon from an unlisted address", "ws03")
    assert [e["source_ref"] for e in ws03.evidence] == [refs["ws03_pair"]]
    assert ws03.evidence[0]["fields"]["user"] == "alice"
    # the address is ws03's, not an unknown device
    assert run(c, "assets.unknown_device") == []


def test_allowed_addresses_are_no_mismatch(c: Case) -> None:
    world(c)
    found = run(c, "assets.zone_mismatch", {"allow_cidrs": ["10.4.0.76/30"]})
    assert [f.details["asset_id"] for f in found] == ["A-04"]


# ---- stale --------------------------------------------------------------------------------------


def test_stale_lists_inventory_items_never_seen(c: Case) -> None:
    world(c)
    (f,) = run(c, "assets.stale")
    assert (f.entity, f.severity, f.count, f.ts_first) == ("inventory", "informational", 2, None)
    assert f.title == "2 inventory items never seen in the evidence"
    items = {i["asset_id"]: i for i in f.details["items"]}
    assert set(items) == {"A-06", "A-10"}  # spare01; scada01 was only knocked on
    assert items["A-10"]["unanswered_connections"] == 1 and items["A-06"]["unanswered_connections"] == 0
    assert {e["source_ref"] for e in f.evidence} == {"assets[5]", "assets[9]"}
    assert all(e["source_file"].endswith("assets.yaml") for e in f.evidence)
    by_zone = {z["zone"]: (z["stale"], z["assets"]) for z in f.details["by_zone"]}
    assert by_zone == {"field": (0, 1), "it": (1, 5), "ot-control": (1, 4)}
    assert run(c, "assets.stale", {"ignore_assets": ["spare01", "A-10"]}) == []


def test_stale_is_not_run_without_any_evidence(c: Case) -> None:
    assert run(c, "assets.stale") == []


# ---- coverage -----------------------------------------------------------------------------------


def test_coverage_gap_fires_for_an_ot_asset_without_security_log_and_full_coverage_is_quiet(c: Case) -> None:
    world(c)
    found = {f.entity: f for f in run(c, "assets.coverage_gap")}
    ot = found["ot-control"]
    listed = {a["asset_id"]: a for a in ot.details["assets"]}
    # hmi02 lacks the Security log; scada01 everything; hmi01 and engineering-ws01 are fully covered
    assert set(listed) == {"A-03", "A-10"}
    assert listed["A-03"]["missing"] == ["security_log"] and listed["A-03"]["why"] == ["critical", "ot zone"]
    assert listed["A-10"]["missing"] == ["security_log", "sysmon", "flows"]
    assert ot.severity == "medium" and ot.count == 2
    assert ot.details["missing_by_source"] == {"flows": 1, "security_log": 2, "sysmon": 1}
    assert {e["source_ref"] for e in ot.evidence} == {"assets[2]", "assets[9]"}
    assert ot.evidence[0]["fields"]["missing"] == "security_log"
    # plc01 (field zone, OT by kind) has flows; a PLC writes no Windows logs: quiet
    assert "field" not in found
    # ws03 is vendor-managed (a vendor service account logs on to it) and has no Windows logs: low, zone it
    it = found["it"]
    assert it.severity == "low" and [a["asset_id"] for a in it.details["assets"]] == ["A-05"]
    assert it.details["assets"][0]["why"] == ["vendor-managed"]


def test_coverage_matrix_counts_every_source_and_the_vendor(c: Case) -> None:
    world(c)
    win(c, "hmi01.corp.example", PS, 400)
    win(c, "hmi01.corp.example", "Microsoft-Windows-PowerShell/Operational", 4104)
    win(c, "hmi01.corp.example", SYSTEM, 7045)
    c.con.execute("INSERT INTO dns (ts, src_ip, query, source_file, source_ref) VALUES (?, '10.4.0.11', 'x', 'd', '1')",
                  [T0])  # fmt: skip
    c.con.execute(
        'INSERT INTO ami_audit (ts, system, "user", src_ip, action, source_file, source_ref) '
        "VALUES (?, 'headend', 'op', '10.4.0.11', 'login', 'a', '1')",
        [T0],
    )
    logon(c, "op", "10.4.0.11", "HMI01", "hmi01.corp.example")
    rep = assets.asset_report(c)
    by = {a["asset_id"]: a for a in rep["assets"]}
    hmi01 = by["A-02"]
    assert hmi01["coverage"] == {"security_log": 1, "sysmon": 1, "powershell": 2, "system_log": 1, "flows": 4,
                                 "dns": 1, "ami_audit": 1, "auth_as_target": 1}  # fmt: skip
    assert hmi01["gaps"] == [] and hmi01["judged"] and hmi01["ot_zone"] and hmi01["first_seen"] == T0
    assert by["A-09"]["vendor"] == "MeterCo" and by["A-09"]["vendor_via"] == ["jump host jump01 in the vendor register"]
    assert by["A-05"]["vendor_via"] == ["vendor service account v-mc-ops logs on to it"]
    assert by["A-07"]["windows"] is False and by["A-07"]["gaps"] == []
    assert by["A-01"]["judged"] is False and by["A-01"]["gaps"] == []
    s = rep["summary"]
    assert (s["assets"], s["seen"], s["stale"], s["vendor_managed"], s["zone_mismatches"]) == (10, 8, 2, 2, 2)


def test_a_vendor_account_validated_by_a_dc_does_not_make_the_dc_vendor_managed(c: Case) -> None:
    world(c)
    logon(c, "v-mc-ops", "10.1.9.10", None, "hmi02", event_id=4768)  # a Kerberos TGT issued (DC-side)
    by = {a["asset_id"]: a for a in assets.asset_report(c)["assets"]}
    assert by["A-03"]["vendor_via"] == []


def test_unknown_required_source_is_an_error(c: Case) -> None:
    s = load_settings()
    s["assets.coverage_gap"]["required"] = ["security_log", "edr"]
    with pytest.raises(ValueError, match="unknown source"):
        assets.asset_report(c, s)


# ---- host-name matching -------------------------------------------------------------------------


def test_host_names_match_short_or_fqdn_in_any_case_and_netbios_truncation(c: Case) -> None:
    world(c)
    win(c, "hmi01.other.example", SECURITY)  # same short name, another domain: not the inventory's hmi01
    logon(c, "x", None, "\\\\HMI02", "WS01.")  # UNC prefix and trailing dot
    assets.build(c)
    rows = c.con.execute("SELECT spelling, asset_id FROM gh_assets_match WHERE kind = 'name' ORDER BY 1, 2").fetchall()
    matched = dict(rows)
    assert matched["hmi01.corp.example"] == "A-02"  # HMI01.corp.example, FQDN vs FQDN, any case
    assert matched["hmi02.corp.example"] == "A-03"  # FQDN in the log, short name in the inventory
    assert matched["ws01.corp.example"] == "A-01" and matched["ws01"] == "A-01" and matched["hmi02"] == "A-03"
    assert matched["engineering-ws0"] == "A-08"  # 15-character NetBIOS name
    assert "hmi01.other.example" not in matched


# ---- zone lookup --------------------------------------------------------------------------------


def test_zone_lookup_by_cidr_asset_list_inventory_and_internal(c: Case) -> None:
    c.con.execute("INSERT INTO zones (name, cidrs, level, assets) VALUES ('sis', [], 4, ['plc01'])")
    c.con.execute("INSERT INTO assets (asset_id, hostname, ips, zone) VALUES ('A-99', 'rtu9', ['172.16.5.5'], 'it')")
    assert zones.zone_ranges(c) == []
    src = "SELECT unnest(['10.4.0.7', '10.6.0.5', '172.16.5.5', '192.168.1.1', '8.8.8.8', 'fe80::1', 'x']) AS ip"
    zones.address_zones(c, src, "gh_t")
    got = {r[0]: r[1:] for r in c.con.execute("SELECT ip, zone, how FROM gh_t").fetchall()}
    assert got == {
        "10.4.0.7": ("ot-control", "cidr"),
        "10.6.0.5": ("sis", "asset"),  # a zone's asset list beats the CIDR
        "172.16.5.5": ("it", "inventory"),  # in no CIDR: the zone the inventory gives it
        "192.168.1.1": (None, "internal"),
        "8.8.8.8": (None, None),
        "fe80::1": (None, "internal"),
        "x": (None, "not an IP"),
    }


# ---- settings and CLI ---------------------------------------------------------------------------


def test_defaults_cover_every_assets_analytic() -> None:
    s = load_settings()
    assert {a.name for a in assets.ANALYTICS} == {k for k in s if k.startswith("assets.")}
    for a in assets.ANALYTICS:
        assert s[a.name]["enabled"] is True, a.name
    assert set(s["assets.coverage_gap"]["required"]) <= set(assets.SOURCES)


def _case_file(tmp_path: Path) -> Path:
    path = tmp_path / "case.duckdb"
    case = Case.open(path)
    _load(case)
    world(case)
    conn(case, "10.4.0.200", "10.4.0.11", port=502)
    case.close()
    return path


def test_cli_table_lists_assets_unknown_devices_and_stale_items(tmp_path: Path) -> None:
    path = _case_file(tmp_path)
    res = CliRunner().invoke(app, ["assets", str(path)])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "assets: 10 in the inventory, 8 seen, 2 never seen" in out
    assert "hmi02" in out and "security_log" in out and "✓" in out
    assert "devices not in the inventory: 1 (ot-control 1)" in out and "10.4.0.200" in out
    assert "inventory items never seen in the evidence: 2" in out and "spare01" in out
    assert "assets seen in another zone than the inventory's: 2" in out


def test_cli_json_gaps_unknown_and_csv(tmp_path: Path) -> None:
    path = _case_file(tmp_path)
    res = CliRunner().invoke(app, ["assets", str(path), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert set(data) == {"summary", "assets", "unknown", "zone_mismatch", "stale", "notes"}
    assert data["summary"]["unknown_by_zone"] == {"ot-control": 1}
    hmi01 = next(a for a in data["assets"] if a["asset_id"] == "A-02")
    assert hmi01["first_seen"] == "2026-04-14T09:00:00Z" and hmi01["coverage"]["security_log"] == 1

    res = CliRunner().invoke(app, ["assets", str(path), "--gaps", "--json", "--csv", str(tmp_path / "gaps.csv")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert set(data) == {"summary", "assets", "notes"}
    assert {a["asset_id"] for a in data["assets"]} == {"A-03", "A-04", "A-05", "A-06", "A-10"}  # not hmi01
    with (tmp_path / "gaps.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["asset_id"] for r in rows] == ["A-03", "A-04", "A-05", "A-06", "A-10"]
    assert rows[0]["gaps"] == "security_log" and rows[0]["sysmon"] == "1" and rows[0]["judged"] == "True"

    res = CliRunner().invoke(app, ["assets", str(path), "--unknown"])
    assert res.exit_code == 0 and "10.4.0.200" in res.output and "hmi02" not in res.output


def test_cli_help_teaches_and_a_missing_case_exits_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["assets", "--help"])
    assert res.exit_code == 0 and "Example: gridhunt assets case.duckdb" in res.output
    res = CliRunner().invoke(app, ["assets", str(tmp_path / "nope.duckdb")])
    assert res.exit_code == 2 and "no such case file" in " ".join(res.output.split())


def test_findings_are_deterministic(c: Case) -> None:
    world(c)
    conn(c, "10.4.0.200", "10.4.0.11")
    first = [f.to_dict() for f in run_analytics(c, load_settings(), only=["assets"]).findings]
    second = [f.to_dict() for f in run_analytics(c, load_settings(), only=["assets"]).findings]
    assert first == second and len(first) == 6
    assert all(isinstance(f["count"], int) for f in first)
