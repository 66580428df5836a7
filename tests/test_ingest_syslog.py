"""Vendor syslog reader: framing (RFC 3164 / 5424 / Cisco / ISO / none), Cisco ASA, FortiGate,
PAN-OS GlobalProtect / SYSTEM / TRAFFIC, netfilter and filterlog messages, gzip, bad lines, sniffing."""

from __future__ import annotations

import gzip
import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from gridhunt.case import Case
from gridhunt.ingest import ingest_paths, syslog
from gridhunt.ingest.detect import detect
from gridhunt.ingest.syslog_frame import Context, epoch_micros, infer_year, parse_frame
from tests.conftest import TEST_DATA, data_files, rows, sniff_and_ingest, utc

DATA = TEST_DATA / "syslog"
FIXTURES = sorted(p for p in DATA.iterdir() if p.name != "README.md")
OTHER = data_files("zeek", "ami", "context", "netlog", "ingest", "auth")

AUTH_COLS = "ts, user, domain, src_ip, src_host, dst_host, outcome, failure_reason, auth_package, source, source_ref"
CONN_COLS = (
    "ts, src_ip, src_port, dst_ip, dst_port, proto, service, duration, bytes_out, bytes_in, action, uid, "
    "source, source_ref"
)


def copy(name: str, tmp_path: Path, mtime: str = "2026-04-17T00:00:00+00:00") -> Path:
    """A fixture copy with a set modification time (RFC 3164 lines take their year from it)."""
    dst = tmp_path / name
    shutil.copy(DATA / name, dst)
    t = datetime.fromisoformat(mtime).timestamp()
    os.utime(dst, (t, t))
    return dst


def auth_rows(case: Case) -> list[tuple]:
    return rows(case, f"SELECT {AUTH_COLS} FROM auth ORDER BY ts, source_ref")


def conn_rows(case: Case) -> list[tuple]:
    return rows(case, f"SELECT {CONN_COLS} FROM conn ORDER BY ts, source_ref")


def ctx(ref: str = "2026-04-17T00:00:00+00:00") -> Context:
    return Context(epoch_micros(datetime.fromisoformat(ref)))


# ---- sniffing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_sniff_claims_each_vendor_file(path: Path) -> None:
    assert syslog.sniff(path.read_bytes()[:65536], path) == "syslog"
    assert detect(path) == ("syslog", "syslog")  # no reader before it in the registry claims it


def test_sniff_leaves_other_formats_alone(tmp_path: Path) -> None:
    for path in OTHER:
        assert syslog.sniff(path.read_bytes()[:65536], path) is None, path
    readme = DATA / "README.md"
    assert syslog.sniff(readme.read_bytes(), readme) is None
    # JSON lines quoting a vendor message, a CSV export, syslog of other programs only
    json_lines = b'{"message": "<166>Apr 15 2026 02:11:05 asa : %ASA-6-113004: AAA user authentication"}\n' * 3
    csv_text = b"ts,src_ip,dst_ip,action\n2026-04-15T02:11:09Z,203.0.113.77,198.51.100.10,deny\n"
    sshd = b"Apr 15 02:11:03 gw01 sshd[812]: Failed password for root from 203.0.113.77 port 40022 ssh2\n" * 5
    for head in (json_lines, csv_text, sshd, b"\x1f\x8b\x08\x00garbage"):
        assert syslog.sniff(head, tmp_path / "x.log") is None, head[:40]


def test_sniff_needs_mostly_syslog_lines(tmp_path: Path) -> None:
    asa = b"<166>Apr 15 2026 02:11:05 asa01 : %ASA-6-113004: AAA user authentication Successful : server = 10.1.1.1"
    asa += b" : user = u\n"
    assert syslog.sniff(asa + b"free text line\n" * 1, tmp_path / "a") == "syslog"
    assert syslog.sniff(asa + b"free text line\n" * 3, tmp_path / "a") is None
    # an ordinary syslog file with one firewall line in it is claimed: the other lines are syslog
    sshd = b"Apr 15 02:11:03 gw01 sshd[812]: Accepted publickey for ops from 10.10.5.20 port 50000 ssh2\n"
    ufw = b"Apr 15 02:11:09 gw01 kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.77 DST=198.51.100.10 PROTO=TCP\n"
    assert syslog.sniff(sshd * 20 + ufw, tmp_path / "syslog") == "syslog"


# ---- framing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "ts", "exact", "host", "app", "msg"),
    [
        (
            "<166>Apr 15 2026 02:11:02 asa-vpn01 : %ASA-6-113005: AAA ...",
            "2026-04-15T02:11:02+00:00", False, "asa-vpn01", None, "%ASA-6-113005: AAA ...",
        ),
        (
            "<166>:Apr 15 2026 02:30:00 UTC: %ASA-6-113012: AAA ...",
            "2026-04-15T02:30:00+00:00", True, None, None, "%ASA-6-113012: AAA ...",
        ),
        (
            "Jan 08 09:12:56 asa.example.com: %ASA-6-113004: AAA ...",
            "2026-01-08T09:12:56+00:00", False, "asa.example.com", None, "%ASA-6-113004: AAA ...",
        ),
        (
            "<134>Apr  5 02:11:10 filterlog[41825]: 77,,,1000001570",
            "2026-04-05T02:11:10+00:00", False, None, "filterlog", "77,,,1000001570",
        ),
        (
            "Apr 15 02:11:09 gw01 kernel: [ 3529.289825] [UFW BLOCK] IN=eth0",
            "2026-04-15T02:11:09+00:00", False, "gw01", "kernel", "[ 3529.289825] [UFW BLOCK] IN=eth0",
        ),
        (
            "2026-04-15T04:11:17.250000+02:00 gw01 kernel: IN=eth0",
            "2026-04-15T02:11:17.250000+00:00", True, "gw01", "kernel", "IN=eth0",
        ),
        (
            "<14>Apr 15 05:30:11 PA-3220-HQ 1,2026/04/15 05:30:11,0162,GLOBALPROTECT,0",
            "2026-04-15T05:30:11+00:00", False, "PA-3220-HQ", None, "1,2026/04/15 05:30:11,0162,GLOBALPROTECT,0",
        ),
        ('<189>date=2026-04-15 time=04:50:10 logid="0000000013"', None, False, None, None,
         'date=2026-04-15 time=04:50:10 logid="0000000013"'),
        (
            '<134>1 2026-04-15T02:11:14.5-03:00 fw.example filterlog 41825 ID47 [meta a="x\\]y" b="1"][o k="v"] '
            "\ufeff96,,,",
            "2026-04-15T05:11:14.500000+00:00", True, "fw.example", "filterlog", "96,,,",
        ),
        ("<14>1 - - - - - - hello", None, False, None, None, "hello"),
    ],
)  # fmt: skip
def test_frame(line: str, ts: str | None, exact: bool, host: str | None, app: str | None, msg: str) -> None:
    frame = parse_frame(line, ctx())
    want = None if ts is None else epoch_micros(datetime.fromisoformat(ts))
    assert (frame.ts, frame.exact, frame.host, frame.app, frame.msg) == (want, exact, host, app, msg)
    assert frame.framed


def test_rfc3164_year_is_the_latest_not_after_the_file_mtime() -> None:
    day = 86_400_000_000
    new_year = epoch_micros(datetime.fromisoformat("2026-01-01T00:05:00+00:00"))
    assert infer_year(12, 31, 23, 59, 59, 0, new_year + day) == utc(2025, 12, 31, 23, 59, 59)
    assert infer_year(1, 1, 0, 0, 2, 0, new_year + day) == utc(2026, 1, 1, 0, 0, 2)
    # a day of slack: a record a few hours 'after' the mtime (local clock ahead of UTC) stays this year
    assert infer_year(1, 1, 20, 0, 0, 0, new_year + day) == utc(2026, 1, 1, 20, 0, 0)
    # 29 February looks back to the last leap year
    march_2027 = epoch_micros(datetime.fromisoformat("2027-03-01T00:00:00+00:00"))
    assert infer_year(2, 29, 12, 0, 0, 0, march_2027) == utc(2024, 2, 29, 12, 0, 0)


def test_year_boundary_in_a_gzip_file(case: Case, tmp_path: Path) -> None:
    path = copy("kern.log.2.gz", tmp_path, mtime="2026-01-01T00:05:00+00:00")
    res = sniff_and_ingest(syslog, case, path)
    assert (res.format, res.records_ok, res.records_bad, res.records_ignored) == ("syslog", 3, 0, 0)
    assert [r[0] for r in conn_rows(case)] == [
        utc(2025, 12, 31, 23, 58, 1),
        utc(2025, 12, 31, 23, 59, 59),
        utc(2026, 1, 1, 0, 0, 2),
    ]
    assert conn_rows(case)[1] == (
        utc(2025, 12, 31, 23, 59, 59), "203.0.113.90", 33001, "10.40.0.8", 502, "tcp", None, None, 60, None,
        "deny", None, "firewall", "line 2",
    )  # fmt: skip
    assert any("year inferred from the file's modification time (3)" in n for n in res.notes)


# ---- Cisco ASA --------------------------------------------------------------------------------


def test_cisco_asa(case: Case) -> None:
    path = DATA / "cisco_asa.log"
    res = sniff_and_ingest(syslog, case, path)
    assert (res.records_ok, res.records_bad, res.records_ignored) == (16, 0, 4)
    assert res.errors == []
    assert res.notes[:2] == [
        "lines by source: Cisco ASA 20",
        "ignored (recognised, nothing to store): Cisco ASA 113004 (authorization) ×1, "
        "Cisco ASA 302013 (Built: its Teardown carries the flow) ×1, Cisco ASA 722037 ×1, Cisco ASA 725001 ×1",
    ]
    assert auth_rows(case) == [
        (utc(2026, 4, 15, 2, 11, 2), "jsmith", None, "198.51.100.23", None, "asa-vpn01", "failure", "AAA failure",
         None, "vpn", "line 1"),
        (utc(2026, 4, 15, 2, 11, 5), "jsmith", None, None, None, "asa-vpn01", "success", None, None, "vpn", "line 2"),
        # the ASA masks unknown user names: kept as no user rather than a user called '*****'
        (utc(2026, 4, 15, 2, 12, 40), None, None, "203.0.113.77", None, "asa-vpn01", "failure", "Invalid password",
         None, "vpn", "line 8"),
        (utc(2026, 4, 15, 2, 30), "netadmin", None, None, None, None, "success", None, None, "vpn", "line 9"),
        (utc(2026, 4, 15, 4, 0, 1), "admin", None, "203.0.113.77", None, "asa-vpn01", "failure",
         "user authentication failed", None, "vpn", "line 14"),
        (utc(2026, 4, 15, 4, 0, 9), "netadmin", None, "10.10.5.20", None, "asa-vpn01", "success", None, None, "vpn",
         "line 15"),
    ]  # fmt: skip
    assert conn_rows(case) == [
        # AnyConnect: 113039 opens, 722051 gives the tunnel address, 113019 closes with duration and bytes
        (utc(2026, 4, 15, 2, 11, 6), "198.51.100.23", None, "10.99.0.15", None, None, "vpn", 5416.0, 1830112, 5210344,
         None, None, "vpn", "line 13"),
        # WebVPN: no 113019, so the 716002 end time gives the duration; no tunnel address -> the gateway
        (utc(2026, 4, 15, 2, 40), "192.0.2.44", None, "asa-vpn01", None, None, "vpn", 930.0, None, None, None, None,
         "vpn", "line 10"),
        (utc(2026, 4, 15, 4, 10), "203.0.113.77", 51544, "10.10.5.20", 3389, "tcp", None, None, None, None, "deny",
         None, "firewall", "line 16"),
        (utc(2026, 4, 15, 4, 10, 1), "203.0.113.77", None, "10.10.5.20", None, "icmp", None, None, None, None, "deny",
         None, "firewall", "line 17"),
        (utc(2026, 4, 15, 4, 10, 5), "10.10.5.20", 53211, "192.0.2.53", 53, "udp", None, None, None, None, "allow",
         None, "firewall", "line 18"),
        # Built outbound: the inside host started it; ts = teardown time - duration
        (utc(2026, 4, 15, 4, 12), "10.10.5.20", 50122, "192.0.2.80", 443, "tcp", None, 30.0, None, None, "allow",
         "88214", "firewall", "line 20"),
    ]  # fmt: skip
    assert rows(case, "SELECT DISTINCT source_file FROM conn") == [(str(path.resolve()),)]


def test_cisco_asa_teardown_without_built(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "asa.log"
    path.write_text(
        "<166>Apr 15 2026 04:12:30 asa01 : %ASA-6-302016: Teardown UDP connection 9 for outside:192.0.2.53/53 "
        "to inside:10.10.5.20/53211 duration 0:02:01 bytes 180\n"
    )
    res = sniff_and_ingest(syslog, case, path)
    assert res.records_ok == 1
    assert conn_rows(case) == [
        (utc(2026, 4, 15, 4, 10, 29), "10.10.5.20", 53211, "192.0.2.53", 53, "udp", None, 121.0, None, None, "allow",
         "9", "firewall", "line 1"),
    ]  # fmt: skip
    assert any("initiator taken as the side with the higher port" in n for n in res.notes)


def test_cisco_asa_header_variants(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "relayed.log"
    path.write_text(
        # a relay's RFC 3164 header in front of the ASA's own; message class in the tag (`logging emblem`)
        "Apr 15 02:11:09 10.1.1.1 Apr 15 2026 02:11:09: %ASA-6-113004: AAA user authentication Successful"
        " : server = 10.1.1.2 : user = bob\n"
        # a zone name the ASA was configured with: taken as UTC, with a note
        "<166>:Apr 15 02:19:08 MSK: %ASA-vpnc-6-611101: User authentication succeeded: Uname: someone\n"
    )
    t = datetime.fromisoformat("2026-04-16T00:00:00+00:00").timestamp()
    os.utime(path, (t, t))
    res = sniff_and_ingest(syslog, case, path)
    assert (res.records_ok, res.records_bad) == (2, 0)
    assert [r[:7] for r in auth_rows(case)] == [
        (utc(2026, 4, 15, 2, 11, 9), "bob", None, None, None, "10.1.1.1", "success"),
        (utc(2026, 4, 15, 2, 19, 8), "someone", None, None, None, None, "success"),
    ]
    assert "time zone name 'MSK' not known: those times taken as UTC (1)" in res.notes


# ---- FortiGate --------------------------------------------------------------------------------


def test_fortigate(case: Case) -> None:
    res = sniff_and_ingest(syslog, case, DATA / "fortigate.log")
    assert (res.records_ok, res.records_bad, res.records_ignored) == (7, 0, 2)
    assert res.notes[1] == (
        "ignored (recognised, nothing to store): FortiGate type=event subtype=system ×1, "
        "FortiGate vpn action=ssl-new-con ×1"
    )
    assert auth_rows(case) == [
        # eventtime in nanoseconds wins over date/time
        (utc(2026, 4, 15, 2, 11, 2, 123456), "svc_meterco", None, "203.0.113.77", None, "fgt-edge", "failure",
         "sslvpn_login_permission_denied", None, "vpn", "line 1"),
        (utc(2026, 4, 15, 2, 15, 40, 512000), "jsmith", "CORP", "198.51.100.23", None, "fgt-edge", "success", None,
         None, "vpn", "line 3"),
        # FortiOS 6.0 layout, no eventtime / tz: date + time as UTC (a note says so)
        (utc(2026, 4, 15, 2, 20), "admin", None, "203.0.113.78", None, "fgt-branch", "failure",
         "sslvpn_login_unknown_user", None, "vpn", "line 8"),
    ]  # fmt: skip
    assert conn_rows(case) == [
        # tunnel-up .. tunnel-down: one session row, start = down - duration
        (utc(2026, 4, 15, 2, 15, 40, 512000), "198.51.100.23", None, "10.212.134.200", None, None, "vpn", 1853.0,
         35156, 111799, None, "307687111", "vpn", "line 4"),
        # traffic: eventtime in seconds, ts = session start
        (utc(2026, 4, 15, 2, 48, 10), "10.10.5.20", 50122, "192.0.2.80", 443, "tcp", None, 120.0, 4810, 90211,
         "allow", "1338", "firewall", "line 5"),
        # RFC 3164 relay header; date + time + tz="+0200"
        (utc(2026, 4, 15, 2, 52), "203.0.113.77", 40022, "10.10.5.20", 3389, "tcp", None, None, 0, 0, "deny",
         "1342", "firewall", "line 6"),
        # IPsec tunnel still up at the end of the file: written from its tunnel-up
        (utc(2026, 4, 15, 3, 0), "192.0.2.200", None, "fgt-edge", None, None, "vpn", None, None, None, None, "48291",
         "vpn", "line 9"),
    ]  # fmt: skip
    assert "timestamps without a UTC offset: taken as UTC (1)" in res.notes


# ---- PAN-OS -----------------------------------------------------------------------------------


def test_paloalto_globalprotect_system_traffic(case: Case) -> None:
    res = sniff_and_ingest(syslog, case, DATA / "paloalto.log")
    assert (res.records_ok, res.records_bad, res.records_ignored) == (8, 0, 4)
    assert res.notes[1] == (
        "ignored (recognised, nothing to store): PAN-OS GLOBALPROTECT gateway-hip-report ×1, PAN-OS SYSTEM general ×1, "
        "PAN-OS THREAT ×1, PAN-OS TRAFFIC start (its end log carries the totals) ×1"
    )
    assert auth_rows(case) == [
        # High Res Timestamp 05:30:10.114+03:00 -> UTC
        (utc(2026, 4, 15, 2, 30, 10, 114000), "jsmith", "CORP", "198.51.100.23", "LT-0412", "GP-Portal-HQ", "success",
         None, "SAML", "vpn", "line 1"),
        (utc(2026, 4, 15, 2, 31, 0, 500000), "svc_meterco", None, "203.0.113.77", None, "GW-HQ-1", "failure",
         "Authentication failed: Invalid username or password", "LDAP", "vpn", "line 2"),
        # SYSTEM log, subtype globalprotect (before PAN-OS 9.1)
        (utc(2026, 4, 15, 2, 40, 52), "opsadmin", None, "203.0.113.78", None, "PA-VM", "failure",
         "Authentication failed: Invalid username or password", None, "vpn", "line 6"),
        (utc(2026, 4, 15, 2, 41, 30), "mlee", "CORP", "198.51.100.31", None, "PA-VM", "success", None, None, "vpn",
         "line 7"),
    ]  # fmt: skip
    assert conn_rows(case) == [
        # gateway-connected .. gateway-logout (Login Duration 3600 s)
        (utc(2026, 4, 15, 2, 31, 24, 250000), "198.51.100.23", None, "10.31.0.12", None, None, "vpn", 3600.0, None,
         None, None, None, "vpn", "line 5"),
        # TRAFFIC end: ts = Start Time, offset from the High Resolution Timestamp (+00:00)
        (utc(2026, 4, 15, 2, 43, 52), "10.10.5.20", 49583, "192.0.2.80", 443, "tcp", "ssl", 32.0, 2228, 5084,
         "allow", "72568134", "firewall", "line 9"),
        (utc(2026, 4, 15, 2, 45), "203.0.113.77", 40022, "10.40.0.8", 20000, "tcp", None, 0.0, 74, 0, "deny", None,
         "firewall", "line 10"),
    ]  # fmt: skip


# ---- netfilter / filterlog --------------------------------------------------------------------


def test_netfilter(case: Case, tmp_path: Path) -> None:
    res = sniff_and_ingest(syslog, case, copy("netfilter.log", tmp_path))
    assert (res.records_ok, res.records_bad, res.records_ignored) == (9, 0, 0)
    assert conn_rows(case) == [
        (utc(2026, 4, 15, 2, 11, 9), "203.0.113.77", 51544, "198.51.100.10", 22, "tcp", None, None, 60, None, "deny",
         None, "firewall", "line 1"),
        # UDP repeats LEN= (the UDP length): the first one, the IP length, is kept
        (utc(2026, 4, 15, 2, 11, 10), "192.0.2.53", 53, "198.51.100.10", 36427, "udp", None, None, 103, None, "allow",
         None, "firewall", "line 2"),
        (utc(2026, 4, 15, 2, 11, 11), "10.10.5.20", None, "10.10.0.10", None, "icmp", None, None, 84, None, None,
         None, "firewall", "line 3"),
        (utc(2026, 4, 15, 2, 11, 12), "2001:db8:1::77", 40022, "2001:db8:2::10", 502, "tcp", None, None, 80, None,
         "deny", None, "firewall", "line 4"),
        (utc(2026, 4, 15, 2, 11, 13), "192.0.2.9", 4444, "198.51.100.10", 20000, "tcp", None, None, 40, None, "deny",
         None, "firewall", "line 5"),
        (utc(2026, 4, 15, 2, 11, 14), "10.10.5.20", 53211, "192.0.2.53", 53, "udp", None, None, 72, None, "allow",
         None, "firewall", "line 6"),
        (utc(2026, 4, 15, 2, 11, 15), "fe80::225:90ff:feab:cdef", None, "ff02::1", None, "icmp", None, None, 120, None,
         None, None, "firewall", "line 7"),
        (utc(2026, 4, 15, 2, 11, 16), "0.0.0.0", None, "224.0.0.1", None, "2", None, None, 32, None, "deny", None,
         "firewall", "line 8"),
        (utc(2026, 4, 15, 2, 11, 17, 250000), "203.0.113.77", 51545, "198.51.100.10", 2404, "tcp", None, None, 44,
         None, "deny", None, "firewall", "line 9"),
    ]  # fmt: skip
    assert "netfilter lines whose log prefix '[UFW AUDIT]' says neither allow nor deny: action left empty (1)" in (
        res.notes
    )
    assert "netfilter lines whose log prefix '(none)' says neither allow nor deny: action left empty (1)" in res.notes


def test_filterlog(case: Case, tmp_path: Path) -> None:
    res = sniff_and_ingest(syslog, case, copy("filterlog.log", tmp_path))
    assert (res.records_ok, res.records_bad, res.records_ignored) == (7, 0, 0)
    assert conn_rows(case) == [
        (utc(2026, 4, 15, 2, 11, 9), "203.0.113.77", 40590, "198.51.100.1", 22, "tcp", None, None, 60, None, "deny",
         None, "firewall", "line 1"),
        (utc(2026, 4, 15, 2, 11, 10), "10.10.5.20", 53211, "192.0.2.53", 53, "udp", None, None, 73, None, "allow",
         None, "firewall", "line 2"),
        (utc(2026, 4, 15, 2, 11, 11), "10.10.5.20", None, "10.10.0.1", None, "icmp", None, None, 84, None, "allow",
         None, "firewall", "line 3"),
        (utc(2026, 4, 15, 2, 11, 12), "2001:db8:1::77", 5353, "2001:db8:2::10", 5353, "udp", None, None, 56, None,
         "deny", None, "firewall", "line 4"),
        (utc(2026, 4, 15, 2, 11, 13), "fe80::225:90ff:feab:cdef", None, "ff02::1:ff00:10", None, "icmp", None, None, 32,
         None, "deny", None, "firewall", "line 5"),
        # OPNsense, RFC 5424 with structured data
        (utc(2026, 4, 15, 2, 11, 14), "10.10.5.20", 50122, "192.0.2.80", 443, "tcp", None, None, 60, None, "allow",
         None, "firewall", "line 6"),
        (utc(2026, 4, 15, 2, 11, 15), "203.0.113.2", None, "224.0.0.18", None, "carp", None, None, 36, None, "deny",
         None, "firewall", "line 7"),
    ]  # fmt: skip


# ---- bad input, gzip, pipeline ----------------------------------------------------------------


def test_bad_and_unknown_lines_are_counted_with_their_line_numbers(case: Case, tmp_path: Path) -> None:
    res = sniff_and_ingest(syslog, case, copy("mixed_bad.log", tmp_path))
    assert (res.records_ok, res.records_bad, res.records_ignored) == (5, 6, 1)
    assert res.errors == [
        ("line 2", syslog.UNKNOWN),
        ("line 3", syslog.UNKNOWN),  # syslog, but sshd: no parser for it
        ("line 5", "SRC: not an IP address: '203.0.113.300'"),
        ("line 6", "PAN-OS GLOBALPROTECT: 9 fields, expected at least 29"),
        ("line 9", "Cisco ASA 113019: message layout not recognised"),
        ("line 11", "bad date 'Apr 31 02:00:00'"),
    ]
    assert res.first_error == "line 2: not a Cisco ASA / FortiGate / PAN-OS / netfilter / filterlog message"
    # the good lines of every vendor are still there
    assert rows(case, "SELECT source_ref, outcome FROM auth ORDER BY source_ref") == [
        ("line 1", "failure"),
        ("line 13", "success"),
        ("line 4", "failure"),
    ]
    assert rows(case, "SELECT source_ref, action FROM conn ORDER BY source_ref") == [
        ("line 12", "deny"),
        ("line 8", "deny"),
    ]


def test_gzip_and_plain_give_the_same_rows(case: Case, tmp_path: Path) -> None:
    plain = tmp_path / "fortigate.log"
    shutil.copy(DATA / "fortigate.log", plain)
    packed = tmp_path / "fortigate.log.1.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a = sniff_and_ingest(syslog, case, plain)
    b = sniff_and_ingest(syslog, case, packed)
    assert (a.records_ok, a.records_bad, a.records_ignored) == (b.records_ok, b.records_bad, b.records_ignored)
    cols = "ts, user, src_ip, outcome, source_ref"
    per_file = f"SELECT {cols} FROM auth WHERE source_file = ? ORDER BY ts"
    assert rows(case, per_file, [str(plain)]) == rows(case, per_file, [str(packed)])
    assert len(rows(case, per_file, [str(packed)])) == 3


def test_truncated_gzip_keeps_what_was_read(case: Case, tmp_path: Path) -> None:
    data = (DATA / "fortigate.log").read_bytes() * 200
    packed = gzip.compress(data)
    path = tmp_path / "cut.log.gz"
    path.write_bytes(packed[: len(packed) // 2])
    res = sniff_and_ingest(syslog, case, path)
    assert res.records_ok > 0
    assert res.records_bad == 1 and "unreadable after line" in res.errors[-1][1]


def test_ingest_paths_over_a_folder(case: Case, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for p in FIXTURES:
        copy(p.name, evidence)
    report = ingest_paths(case, [evidence])
    assert [(Path(f.path).name, f.format) for f in report.files] == [(p.name, "syslog") for p in FIXTURES]
    assert report.records_bad == 6  # all from mixed_bad.log
    assert report.records_ignored == 4 + 2 + 1 + 4
    assert rows(case, "SELECT count(*) FROM ingest_log WHERE format = 'syslog'") == [(len(FIXTURES),)]
    assert rows(case, "SELECT source, count(*) FROM conn GROUP BY source ORDER BY source") == [
        ("firewall", 4 + 2 + 2 + 9 + 7 + 3 + 2),
        ("vpn", 2 + 2 + 1),
    ]
