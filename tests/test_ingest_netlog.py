"""Firewall / VPN CSV reader: canonical headers, header mapping, vpn auth + sessions."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from gridhunt.case import Case
from gridhunt.ingest import netlog
from tests.conftest import TEST_DATA, data_files, rows, sniff_and_ingest, utc

DATA = TEST_DATA / "netlog"
OTHER = data_files("zeek", "ami", "context")
load = partial(sniff_and_ingest, netlog)


def test_sniff() -> None:
    fw, vpn = DATA / "firewall.csv", DATA / "vpn.csv"
    assert netlog.sniff(fw.read_bytes(), fw) == "firewall_csv"
    assert netlog.sniff(vpn.read_bytes(), vpn) == "vpn_csv"
    mapped = DATA / "fortigate" / "traffic.csv"
    assert netlog.sniff(mapped.read_bytes(), mapped) == "firewall_csv"  # via traffic.mapping.yaml beside it
    mapping = DATA / "fortigate" / "traffic.mapping.yaml"
    assert netlog.sniff(mapping.read_bytes(), mapping) == "netlog_mapping"
    assert netlog.sniff(b"date_time,srcip,dstip\n", Path("/nonexistent/x.csv")) is None
    for path in OTHER:
        assert netlog.sniff(path.read_bytes()[:8192], path) is None, path


def test_firewall_rows_and_bad_lines(case: Case) -> None:
    path = DATA / "firewall.csv"
    res = load(case, path)
    assert (res.format, res.records_ok, res.records_bad) == ("firewall_csv", 4, 4)
    assert res.errors == [
        ("line 6", "action: expected allow|deny, got 'maybe'"),
        ("line 7", "src_ip: not an IP address: '10.30.5.300'"),
        ("line 8", "ts: bad timestamp 'not-a-time'"),
        ("line 9", "expected 12 columns, got 5"),
    ]
    got = rows(
        case,
        "SELECT ts, src_ip, src_port, dst_ip, dst_port, proto, duration, bytes_out, bytes_in, "
        "action, service, uid, source, source_file, source_ref FROM conn ORDER BY ts",
    )
    assert got[0] == (
        utc(2026, 4, 12, 3, 14, 15, 123000),
        "10.20.1.15",
        49822,
        "203.0.113.40",
        443,
        "tcp",
        12.5,
        1843,
        52110,
        "allow",
        None,
        None,
        "firewall",
        str(path.resolve()),
        "line 2",
    )
    assert got[1][9:] == ("deny", None, None, "firewall", str(path.resolve()), "line 3")
    # 'drop' is a deny; empty counts -> NULL
    assert got[2][5:10] == ("udp", None, None, None, "deny")
    # icmp has no ports
    assert got[3][1:6] == ("10.10.0.5", None, "10.40.0.21", None, "icmp")


def test_mapped_vendor_export(case: Case) -> None:
    res = load(case, DATA / "fortigate" / "traffic.csv")
    assert (res.format, res.records_ok, res.records_bad) == ("firewall_csv", 2, 0)
    # FortiGate 'accept', protocol numbers, and both date styles
    assert rows(
        case, "SELECT ts, proto, src_ip, dst_port, bytes_out, action, source FROM conn ORDER BY ts"
    ) == [
        (utc(2026, 4, 12, 3, 14, 15), "tcp", "10.20.1.15", 443, 1843, "allow", "firewall"),
        (utc(2026, 4, 12, 3, 14, 16), "udp", "10.20.1.15", 5353, 0, "deny", "firewall"),
    ]


def test_mapping_file_itself_is_skipped(case: Case) -> None:
    res = load(case, DATA / "fortigate" / "traffic.mapping.yaml")
    assert res.records_ok == 0 and res.records_bad == 0
    assert res.skipped_reason is not None and "header mapping" in res.skipped_reason


def test_ingest_mapped_with_dict_and_bad_mapping(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Time,Act,Src,Dst,DPort\n2026-04-12T01:00:00Z,Permit,10.1.1.1,10.2.2.2,22\n")
    res = netlog.ingest_mapped(
        case, path, {"Time": "ts", "Act": "action", "Src": "src_ip", "Dst": "dst_ip", "DPort": "dst_port"}
    )
    assert (res.format, res.records_ok, res.records_bad) == ("firewall_csv", 1, 0)
    assert rows(case, "SELECT src_ip, dst_port, action FROM conn") == [("10.1.1.1", 22, "allow")]
    mapping = tmp_path / "export.mapping.yaml"
    mapping.write_text("Time: ts\nAct: action\nSrc: src_ip\nDst: dst_ip\nDPort: destination\n")
    res = netlog.ingest(case, path, "firewall_csv")
    assert res.records_ok == 1
    assert res.errors == [("export.mapping.yaml: DPort", "unknown target column 'destination'")]


def test_header_not_matching(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "firewall.csv"
    path.write_text("when,who\n1,2\n")
    res = netlog.ingest(case, path, "firewall_csv")
    assert (res.records_ok, res.records_bad) == (0, 1)
    assert res.errors[0][0] == "line 1" and "header does not match firewall_csv" in res.errors[0][1]


def test_vpn_auth_rows(case: Case) -> None:
    path = DATA / "vpn.csv"
    res = load(case, path)
    assert (res.format, res.records_ok, res.records_bad) == ("vpn_csv", 5, 1)
    assert res.errors == [("line 7", "event: expected login|login_failed|logout, got 'lockout'")]
    got = rows(
        case,
        'SELECT ts, "user", domain, src_ip, dst_host, outcome, failure_reason, source, source_ref '
        "FROM auth ORDER BY ts",
    )
    assert got == [
        (
            utc(2026, 4, 12, 2, 0),
            "svc-meterco-vpn",
            None,
            "198.51.100.23",
            "vpn-gw-01",
            "failure",
            "bad password",
            "vpn",
            "line 2",
        ),
        (
            utc(2026, 4, 12, 2, 0, 5),
            "svc-meterco-vpn",
            None,
            "198.51.100.23",
            "vpn-gw-01",
            "success",
            None,
            "vpn",
            "line 3",
        ),
        (
            utc(2026, 4, 12, 2, 10),
            "jsmith",
            "CORP",
            "192.0.2.44",
            "vpn-gw-01",
            "success",
            None,
            "vpn",
            "line 4",
        ),
        (
            utc(2026, 4, 12, 3, 5),
            "alice",
            None,
            "192.0.2.50",
            "vpn-gw-01",
            "failure",
            "account locked, contact helpdesk",
            "vpn",
            "line 6",
        ),
    ]


def test_vpn_sessions_to_conn(case: Case) -> None:
    load(case, DATA / "vpn.csv")
    got = rows(
        case,
        "SELECT ts, src_ip, dst_ip, service, duration, bytes_out, bytes_in, uid, source, source_ref "
        "FROM conn ORDER BY ts",
    )
    assert got == [
        # closed session: start = logout ts - duration, counters from the logout row
        (
            utc(2026, 4, 12, 2, 0, 5),
            "198.51.100.23",
            "10.99.0.12",
            "vpn",
            3600.0,
            1048576,
            52428800,
            "S-1001",
            "vpn",
            "line 5",
        ),
        # still open at collection: written from its login row
        (
            utc(2026, 4, 12, 2, 10),
            "192.0.2.44",
            "10.99.0.13",
            "vpn",
            None,
            None,
            None,
            "S-1002",
            "vpn",
            "line 4",
        ),
    ]


def test_vpn_logout_without_duration_pairs_with_login(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "vpn.csv"
    path.write_text(
        "ts,gateway,user,src_ip,assigned_ip,event,reason,session_id,bytes_in,bytes_out,duration\n"
        "2026-04-12T01:00:00Z,gw,bob,192.0.2.9,10.99.0.40,login,,S-9,,,\n"
        "2026-04-12T01:30:00Z,gw,bob,,,logout,,S-9,10,20,\n"
    )
    res = netlog.ingest(case, path, "vpn_csv")
    assert (res.records_ok, res.records_bad) == (2, 0)
    assert rows(case, "SELECT ts, src_ip, dst_ip, duration, bytes_in, bytes_out, source_ref FROM conn") == [
        (utc(2026, 4, 12, 1, 0), "192.0.2.9", "10.99.0.40", 1800.0, 10, 20, "line 3")
    ]


def test_progress_on_csv(case: Case) -> None:
    path = DATA / "firewall.csv"
    steps: list[int] = []
    netlog.ingest(case, path, "firewall_csv", progress=steps.append)
    assert sum(steps) == path.stat().st_size
