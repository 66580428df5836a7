"""ICS analytics: each fires on the attack shape and stays quiet on its benign twin.

`ics` rows are written straight into a real case, as the Zeek reader would (write / control from the
reader's own classification table), beside a small site: an OT control zone with a SCADA master, an
engineering workstation, an HMI, a historian and field devices; an AMI zone whose head-end may poll DNP3
through a declared conduit; IT and vendor zones."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gridhunt.case import Case
from gridhunt.detect import run_analytics
from gridhunt.detect.settings import SettingsError, load_settings
from gridhunt.ingest import ingest_paths, zeek_ics
from tests.conftest import TEST_DATA, utc

MON = utc(2026, 4, 13, 10, 0, 0)  # a Monday, 10:00 UTC: business hours
SCADA, EWS, HMI, HIST = "10.40.0.10", "10.40.0.20", "10.40.0.30", "10.40.0.40"
PLC, RTU, SUB_RTU = "10.40.1.21", "10.40.2.31", "10.41.0.5"
HES, METER, IT_PC, VENDOR, PUBLIC = "10.20.1.15", "10.30.8.41", "10.10.5.5", "10.99.0.7", "203.0.113.7"
PORTS = {"modbus": 502, "dnp3": 20000, "bacnet": 47808, "cip": 44818, "enip": 44818, "s7comm": 102, "c1222": 1153}
_ref = iter(range(1, 10**9))


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Case]:
    case = Case.open(tmp_path / "c.duckdb")
    case.con.execute(
        """INSERT INTO zones (name, cidrs, level, kind, source_file, source_ref) VALUES
        ('ot-control', ['10.40.0.0/16'], 3, NULL, 'zones.yaml', '1'),
        ('substation', ['10.41.0.0/16'], NULL, 'ot', 'zones.yaml', '2'),
        ('ami', ['10.20.0.0/16', '10.30.0.0/16'], 2, NULL, 'zones.yaml', '3'),
        ('it', ['10.10.0.0/16'], 1, 'it', 'zones.yaml', '4'),
        ('vendor-access', ['10.99.0.0/24'], 1, 'vendor', 'zones.yaml', '5')"""
    )
    case.con.execute(
        """INSERT INTO conduits (from_zone, to_zone, proto, ports, source_file, source_ref) VALUES
        ('ami', 'ot-control', 'tcp', '20000-20010', 'zones.yaml', '9')"""
    )
    case.con.executemany(
        "INSERT INTO assets (asset_id, hostname, ips, zone, role, source_file, source_ref) "
        "VALUES (?, ?, ?, ?, ?, 'assets.yaml', ?)",
        [
            ("A-10", "scada01", [SCADA], "ot-control", "scada_master", "1"),
            ("A-20", "ews01", [EWS], "ot-control", "Engineering Workstation", "2"),
            ("A-30", "hmi01", [HMI], "ot-control", "hmi", "3"),
            ("A-40", "hist01", [HIST], "ot-control", "historian", "4"),
            ("A-50", "plc-fdr12", [PLC], "ot-control", "plc", "5"),
            ("A-60", "rtu-sub3", [RTU], "ot-control", "rtu", "6"),
            ("A-70", "hes01", [HES], "ami", "ami_headend", "7"),
        ],
    )
    yield case
    case.close()


def cmd(
    c: Case,
    ts: datetime,
    src: str,
    dst: str,
    protocol: str,
    function: str,
    direction: str | None = "request",
) -> str:
    """One ics row, classified as the reader classifies it."""
    ref = f"line {next(_ref)}"
    kind = zeek_ics.classify(protocol, function)
    c.con.execute(
        """INSERT INTO ics (ts, uid, src_ip, src_port, dst_ip, dst_port, protocol, "function", direction,
            is_write, is_control, details, source_file, source_ref)
        VALUES (?, 'C1', ?, 40000, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?)""",
        [ts, src, dst, PORTS[protocol], protocol, function, direction, kind is not None and kind[0] == "write",
         kind is not None and kind[0] == "control", f"{protocol}.log", ref],
    )  # fmt: skip
    return ref


def run(c: Case, name: str, settings: dict | None = None):
    s = load_settings()
    s[name].update(settings or {})
    res = run_analytics(c, s, only=[name])
    (r,) = [r for r in res.runs if r.name == name]
    assert r.error is None, r.error
    return res.findings, r, res.notes


def findings(c: Case, name: str, settings: dict | None = None):
    return run(c, name, settings)[0]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def poll(c: Case, start: datetime, hours: int, src: str = SCADA, dst: str = PLC, protocol: str = "modbus") -> None:
    """Routine polling: one read request and its reply an hour."""
    func = {"modbus": "READ_HOLDING_REGISTERS", "dnp3": "READ"}[protocol]
    for h in range(hours):
        cmd(c, start + timedelta(hours=h), src, dst, protocol, func)
        cmd(c, start + timedelta(hours=h, seconds=1), src, dst, protocol, func, "response")


# ---- writes from hosts that are not engineering workstations / HMIs / SCADA masters ----------------------


def test_historian_writing_a_register_fires_once_per_write(c: Case) -> None:
    poll(c, MON, 2, src=HIST)  # its reads are fine
    req = cmd(c, MON + minutes(5), HIST, PLC, "modbus", "WRITE_SINGLE_REGISTER")
    cmd(c, MON + minutes(5.01), HIST, PLC, "modbus", "WRITE_SINGLE_REGISTER", "response")  # the echo: not counted
    (f,) = findings(c, "ics.write_from_non_engineering_host")
    assert (f.entity, f.count, f.severity, f.rule_id) == (HIST, 1, "high", "ics.write_from_non_engineering_host")
    assert f.attack == ["T0855", "T0836"]
    assert [e["source_ref"] for e in f.evidence] == [req]
    assert f.evidence[0]["fields"]["function"] == "WRITE_SINGLE_REGISTER"
    d = f.details
    assert (d["asset_role"], d["asset_id"], d["hostname"], d["zone"], d["in_inventory"]) == (
        "historian", "A-40", "hist01", "ot-control", True,
    )  # fmt: skip
    assert (d["writes"], d["controls"], d["functions"], d["targets"]) == (1, 0, {"WRITE_SINGLE_REGISTER": 1}, [PLC])
    assert d["allowed_roles"] == ["c1222|ami-headend", "engineering-workstation", "hmi", "scada-master", "scada-server"]


def test_unknown_host_or_control_command_is_critical(c: Case) -> None:
    cmd(c, MON, "10.40.9.9", PLC, "modbus", "WRITE_MULTIPLE_COILS")
    cmd(c, MON + minutes(1), HIST, "10.40.5.61", "s7comm", "PLC Stop")
    got = {f.entity: f for f in findings(c, "ics.write_from_non_engineering_host")}
    assert got["10.40.9.9"].severity == "critical" and got["10.40.9.9"].details["in_inventory"] is False
    assert "asset_role" not in got["10.40.9.9"].details
    assert got[HIST].severity == "critical" and got[HIST].details["controls"] == 1


def test_engineering_workstation_hmi_and_scada_master_writing_are_quiet(c: Case) -> None:
    cmd(c, MON, EWS, PLC, "modbus", "WRITE_MULTIPLE_REGISTERS")  # role 'Engineering Workstation'
    cmd(c, MON, HMI, "10.40.4.51", "cip", "Set Attributes Single")
    cmd(c, MON, SCADA, RTU, "dnp3", "DIRECT_OPERATE")
    poll(c, MON, 3, protocol="dnp3", dst=RTU)
    # the head-end is the C12.22 master of its meters
    cmd(c, MON, HES, METER, "c1222", "REQ:Logon,REQ:Full Write,REQ:Logoff")
    # a write seen only as its reply (the request was not captured) is not a command
    cmd(c, MON, HIST, PLC, "modbus", "WRITE_SINGLE_COIL", "response")
    assert findings(c, "ics.write_from_non_engineering_host") == []


def test_head_end_operating_a_breaker_over_dnp3_is_not_its_job(c: Case) -> None:
    cmd(c, MON, HES, RTU, "dnp3", "DIRECT_OPERATE")
    (f,) = findings(c, "ics.write_from_non_engineering_host")
    assert (f.entity, f.details["asset_role"], f.details["protocols"]) == (HES, "ami-headend", ["dnp3"])


def test_roles_come_from_settings(c: Case) -> None:
    cmd(c, MON, HIST, PLC, "modbus", "WRITE_SINGLE_REGISTER")
    assert findings(c, "ics.write_from_non_engineering_host", {"engineering_roles": ["Historian"]}) == []


def test_without_an_inventory_it_says_why_it_did_not_run(c: Case) -> None:
    c.con.execute("DELETE FROM assets")
    cmd(c, MON, HIST, PLC, "modbus", "WRITE_SINGLE_REGISTER")
    found, r, _ = run(c, "ics.write_from_non_engineering_host")
    assert found == [] and r.skipped_reason == "no rows in assets"


# ---- control commands -----------------------------------------------------------------------------------


def test_restart_from_the_scada_master_in_business_hours_is_notable_but_medium(c: Case) -> None:
    ref = cmd(c, MON, SCADA, RTU, "dnp3", "COLD_RESTART")
    (f,) = findings(c, "ics.control_command")
    assert (f.entity, f.severity, f.count, f.evidence[0]["source_ref"]) == (f"{SCADA} -> {RTU} dnp3", "medium", 1, ref)
    assert f.attack == ["T0816", "T0858", "T0843", "T0857"]
    d = f.details
    assert (d["functions"], d["off_hours"], d["from_engineering_host"], d["asset_role"]) == (
        {"COLD_RESTART": 1}, 0, True, "scada-master",
    )  # fmt: skip
    assert (d["target_host"], d["timezone"], d["business_hours"]) == ("rtu-sub3", "UTC", [7, 18])


def test_off_hours_is_high_and_off_hours_from_a_non_engineering_host_critical(c: Case) -> None:
    night = utc(2026, 4, 14, 2, 30, 0)
    cmd(c, night, EWS, "10.40.5.61", "s7comm", "PLC Stop")
    cmd(c, night, HIST, PLC, "modbus", "DIAGNOSTICS")
    cmd(c, utc(2026, 4, 18, 11, 0, 0), SCADA, RTU, "dnp3", "WARM_RESTART")  # a Saturday
    got = {f.entity: (f.severity, f.details["off_hours"]) for f in findings(c, "ics.control_command")}
    assert got == {
        f"{EWS} -> 10.40.5.61 s7comm": ("high", 1),
        f"{HIST} -> {PLC} modbus": ("critical", 1),
        f"{SCADA} -> {RTU} dnp3": ("high", 1),
    }
    # weekends can count as working days
    (f,) = [f for f in findings(c, "ics.control_command", {"weekends_off_hours": False}) if "dnp3" in f.entity]
    assert f.severity == "medium"


def test_business_hours_are_the_sites_local_hours(c: Case) -> None:
    cmd(c, utc(2026, 4, 13, 22, 0, 0), SCADA, RTU, "dnp3", "COLD_RESTART")  # 17:00 in Chicago (CDT)
    assert [f.severity for f in findings(c, "ics.control_command")] == ["high"]
    assert [f.severity for f in findings(c, "ics.control_command", {"timezone": "America/Chicago"})] == ["medium"]


def test_inside_a_change_window_is_low_and_names_the_ticket(c: Case) -> None:
    c.con.execute(
        "INSERT INTO change_windows VALUES (?, ?, 'CHG-4411', 'scada', 'RTU firmware', 'changes.csv', 'line 2')",
        [MON - minutes(30), MON + minutes(30)],
    )
    cmd(c, MON, EWS, RTU, "dnp3", "OPEN_FILE")
    cmd(c, MON + minutes(1), EWS, RTU, "dnp3", "CLOSE_FILE")
    assert findings(c, "ics.control_command") == []  # approved engineering work
    (f,) = findings(c, "ics.control_command", {"report_approved": True})
    assert (f.severity, f.details["change_tickets"], f.details["in_change_window"]) == ("low", ["CHG-4411"], 2)
    cmd(c, MON + minutes(2), HIST, RTU, "dnp3", "DIRECT_OPERATE")  # inside the window, but not an engineer
    (f,) = findings(c, "ics.control_command")
    assert f.entity == f"{HIST} -> {RTU} dnp3" and f.severity == "high"


def test_reads_and_writes_are_not_control_commands(c: Case) -> None:
    poll(c, MON, 3)
    cmd(c, MON, EWS, PLC, "modbus", "WRITE_SINGLE_REGISTER")
    cmd(c, MON, SCADA, RTU, "dnp3", "COLD_RESTART", "response")  # a reply alone
    assert findings(c, "ics.control_command") == []


# ---- new master -> outstation pairs -----------------------------------------------------------------------


def test_pair_first_seen_after_the_baseline_fires(c: Case) -> None:
    poll(c, MON, 48)  # SCADA -> PLC all along: known
    poll(c, MON, 48, dst=RTU, protocol="dnp3")
    later = MON + timedelta(hours=30)
    poll(c, later, 2, src=HIST)  # a new master, reads only
    rogue = cmd(c, later + minutes(3), VENDOR, RTU, "dnp3", "DIRECT_OPERATE")
    cmd(c, later + minutes(4), EWS, "255.255.255.255", "bacnet", "who_is")  # discovery broadcast: not a pair
    got = {f.entity: f for f in findings(c, "ics.new_master_outstation_pair")}
    assert set(got) == {f"{HIST} -> {PLC} modbus", f"{VENDOR} -> {RTU} dnp3"}
    read = got[f"{HIST} -> {PLC} modbus"]
    assert (read.severity, read.count, read.attack) == ("medium", 2, ["T0848", "T0886"])  # requests only
    d = read.details
    assert (d["master_role"], d["master_host"], d["outstation_role"], d["pairs_in_baseline"]) == (
        "historian", "hist01", "plc", 2,
    )  # fmt: skip
    assert (d["baseline_start"], d["baseline_end"], d["baseline_hours"]) == (
        "2026-04-13T10:00:00Z", "2026-04-14T10:00:00Z", 24,
    )  # fmt: skip
    bad = got[f"{VENDOR} -> {RTU} dnp3"]
    assert (bad.severity, bad.details["controls"], bad.evidence[0]["source_ref"]) == ("high", 1, rogue)
    assert "master_role" not in bad.details and bad.details["master_zone"] == "vendor-access"


def test_an_engineer_opening_a_new_pair_in_working_hours_is_the_job_at_night_it_is_not(c: Case) -> None:
    poll(c, MON, 48)
    later = MON + timedelta(hours=30)  # Tuesday 16:00
    cmd(c, later, EWS, RTU, "modbus", "WRITE_SINGLE_REGISTER")
    assert findings(c, "ics.new_master_outstation_pair") == []
    night = cmd(c, MON + timedelta(hours=40), EWS, RTU, "dnp3", "WRITE")  # Wednesday 02:00, no change window
    (f,) = findings(c, "ics.new_master_outstation_pair")
    assert f.entity == f"{EWS} -> {RTU} dnp3" and f.evidence[0]["source_ref"] == night
    assert f.details["from_engineering_host"] is True and f.details["off_hours_or_unapproved"] == 1
    got = findings(c, "ics.new_master_outstation_pair", {"quiet_engineering_in_business_hours": False})
    assert len(got) == 2


def test_known_pairs_and_short_evidence_are_quiet(c: Case) -> None:
    poll(c, MON, 10)
    cmd(c, MON + timedelta(hours=5), HIST, PLC, "modbus", "READ_COILS")
    found, _, notes = run(c, "ics.new_master_outstation_pair")
    assert found == []
    assert notes == [
        "ics.new_master_outstation_pair: ICS commands span 9.0 h, not more than baseline_hours (24): skipped"
    ]
    # a shorter baseline makes the historian's first read new
    (f,) = findings(c, "ics.new_master_outstation_pair", {"baseline_hours": 4})
    assert f.entity == f"{HIST} -> {PLC} modbus"


# ---- ICS protocols outside the OT zones -------------------------------------------------------------------


def test_modbus_from_the_it_zone_fires(c: Case) -> None:
    cmd(c, MON, IT_PC, PLC, "modbus", "READ_COILS")
    w = cmd(c, MON + minutes(1), IT_PC, PLC, "modbus", "WRITE_SINGLE_COIL")
    cmd(c, MON + minutes(1.01), IT_PC, PLC, "modbus", "WRITE_SINGLE_COIL", "response")
    (f,) = findings(c, "ics.protocol_outside_zone")
    assert (f.entity, f.severity, f.count) == (f"{IT_PC} -> {PLC} modbus", "high", 3)
    assert f.attack == ["T0886", "T0883"] and f.evidence[1]["source_ref"] == w
    d = f.details
    assert (d["src_zone"], d["dst_zone"], d["src_is_ot"], d["dst_is_ot"], d["public_end"]) == (
        "it", "ot-control", False, True, False,
    )  # fmt: skip
    assert (d["records"], d["commands"], d["writes"], d["dst_role"]) == (3, 2, 1, "plc")
    assert d["ot_zones"] == ["ot-control", "substation"] and d["min_ot_level"] == 3


def test_reads_from_the_vendor_zone_are_medium_and_from_the_internet_critical(c: Case) -> None:
    cmd(c, MON, VENDOR, RTU, "dnp3", "READ")
    cmd(c, MON, PUBLIC, "10.40.5.61", "s7comm", "Read Variable")
    got = {f.entity: (f.severity, f.details["public_end"]) for f in findings(c, "ics.protocol_outside_zone")}
    assert got == {f"{VENDOR} -> {RTU} dnp3": ("medium", False), f"{PUBLIC} -> 10.40.5.61 s7comm": ("critical", True)}


def test_inside_ot_broadcasts_and_conduit_traffic_are_quiet(c: Case) -> None:
    poll(c, MON, 3)
    cmd(c, MON, SCADA, SUB_RTU, "dnp3", "READ")  # into the substation zone (kind: ot, no level)
    cmd(c, MON, EWS, "255.255.255.255", "bacnet", "who_is")
    cmd(c, MON, HMI, "10.40.255.255", "enip", "List Identity")  # the zone subnet's broadcast address
    cmd(c, MON, HES, RTU, "dnp3", "READ")  # ami -> ot-control on 20000: the declared conduit
    cmd(c, MON, HES, METER, "c1222", "REQ:Partial Read 1")  # meter traffic is not an OT protocol here
    assert findings(c, "ics.protocol_outside_zone") == []
    # without the conduit, or counting C12.22 as OT, they would be reported
    got = findings(c, "ics.protocol_outside_zone", {"respect_conduits": False, "protocols": ["dnp3", "c1222"]})
    assert sorted(f.entity for f in got) == [f"{HES} -> {METER} c1222", f"{HES} -> {RTU} dnp3"]
    # or an AMI zone named as OT
    assert findings(c, "ics.protocol_outside_zone", {"respect_conduits": False, "ot_zones": ["ami"]}) == []


def test_a_conduit_on_other_ports_does_not_cover_modbus(c: Case) -> None:
    cmd(c, MON, HES, PLC, "modbus", "WRITE_SINGLE_REGISTER")
    (f,) = findings(c, "ics.protocol_outside_zone")
    assert (f.entity, f.severity) == (f"{HES} -> {PLC} modbus", "high")


def test_no_ot_zone_means_nothing_to_judge(c: Case) -> None:
    c.con.execute("UPDATE zones SET level = 1, kind = 'it'")
    cmd(c, MON, IT_PC, PLC, "modbus", "WRITE_SINGLE_COIL")
    found, _, notes = run(c, "ics.protocol_outside_zone")
    assert found == [] and notes == [
        "ics.protocol_outside_zone: no OT zone (kind: ot, level >= 3, or ot_zones): skipped"
    ]


# ---- settings and the fixtures end to end -----------------------------------------------------------------


def test_settings_file_and_typos(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("ics.control_command:\n  timezone: America/Chicago\n  business_hours_start: 6\n")
    s = load_settings(path)
    assert (s["ics.control_command"]["timezone"], s["ics.control_command"]["business_hours_start"]) == (
        "America/Chicago", 6,
    )  # fmt: skip
    assert s["ics.control_command"]["engineering_roles"] == [
        "engineering-workstation",
        "scada-master",
        "scada-server",
        "hmi",
    ]
    path.write_text("ics.control_command:\n  tz: UTC\n")
    with pytest.raises(SettingsError, match="ics.control_command.tz: unknown setting"):
        load_settings(path)


def test_fixture_logs_end_to_end(c: Case) -> None:
    report = ingest_paths(c, [TEST_DATA / "ics"])
    assert report.records_ok == 63
    res = run_analytics(c, load_settings(), only=["ics"])
    assert all(r.error is None for r in res.runs), res.runs
    by_rule: dict[str, set[str]] = {}
    for f in res.findings:
        by_rule.setdefault(f.rule_id, set()).add(f.entity)
    # the vendor-zone coil write and the head-end's DNP3 operate / restarts
    assert by_rule["ics.write_from_non_engineering_host"] == {VENDOR, HES}
    assert by_rule["ics.protocol_outside_zone"] == {f"{VENDOR} -> {PLC} modbus"}  # the head-end's DNP3: conduit
    assert f"{HES} -> {RTU} dnp3" in by_rule["ics.control_command"]
    assert f"{EWS} -> 10.40.5.61 s7comm" in by_rule["ics.control_command"]
    assert "ics.new_master_outstation_pair" not in by_rule  # the fixtures span minutes
