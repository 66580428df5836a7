"""Zeek reader: real Zeek TSV headers and JSON lines into conn / dns / http / tls (x509 / files and the
format quirks: test_ingest_zeek_x509_files.py, test_ingest_zeek_quirks.py)."""

from __future__ import annotations

import gzip
from functools import partial
from pathlib import Path

from gridhunt.case import Case
from gridhunt.ingest import zeek
from tests.conftest import TEST_DATA, data_files, rows, sniff_and_ingest, utc

DATA = TEST_DATA / "zeek"
OTHER = data_files("netlog", "ami", "context")
load = partial(sniff_and_ingest, zeek)


def test_sniff_tsv_json_gzip_and_not_others() -> None:
    assert zeek.sniff((DATA / "conn.log").read_bytes(), DATA / "conn.log") == "zeek_tsv"
    gz = DATA / "conn.04:00:00-05:00:00.log.gz"
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    assert zeek.sniff(gz.read_bytes()[:512], gz) == "zeek_tsv"
    assert zeek.sniff((DATA / "json" / "dns.log").read_bytes(), DATA / "json" / "dns.log") == "zeek_json"
    assert zeek.sniff((DATA / "zeek-stream.json").read_bytes(), DATA / "zeek-stream.json") == "zeek_json"
    # x509 and Zeek < 6 files records have no connection id
    x509 = b'{"ts":1.5,"fingerprint":"ab","certificate.version":3,"certificate.serial":"01"}\n'
    files = b'{"ts":1.5,"fuid":"F1","tx_hosts":["10.0.0.1"],"seen_bytes":10}\n'
    assert zeek.sniff(x509, Path("a.json")) == zeek.sniff(files, Path("b.json")) == "zeek_json"
    assert zeek.sniff(b'{"ts": 1.5, "serial": "01"}\n', Path("c.json")) is None
    # LogAscii tsv=T output: a bare header row only
    assert zeek.sniff(b"ts\tuid\tid.orig_h\tid.orig_p\n", Path("x.tsv")) == "zeek_tsv"
    assert zeek.sniff(b'{"Event": {"System": {}}}\n', Path("conn.json")) is None
    for path in OTHER:
        assert zeek.sniff(path.read_bytes()[:8192], path) is None, path


def test_conn_tsv_values_unset_and_empty(case: Case) -> None:
    res = load(case, DATA / "conn.log")
    assert (res.format, res.records_ok, res.records_bad, res.errors) == ("zeek_tsv", 4, 0, [])
    got = rows(
        case,
        "SELECT ts, uid, src_ip, src_port, dst_ip, dst_port, proto, service, duration, "
        "bytes_out, bytes_in, action, source, source_file, source_ref FROM conn ORDER BY ts",
    )
    src = str((DATA / "conn.log").resolve())
    assert got[0] == (
        utc(2026, 4, 12, 3, 14, 15, 123456),
        "CHhAvVGS1DHFjwGM9",
        "10.20.1.15",
        49822,
        "203.0.113.40",
        443,
        "tcp",
        "ssl",
        12.503211,
        1843,
        52110,
        None,
        "zeek",
        src,
        "line 9",
    )
    # exact microseconds from the epoch text (.000001), no float rounding
    assert got[1][0] == utc(2026, 4, 12, 3, 14, 16, 1)
    # '-' (unset) service, duration and byte counts -> NULL
    assert got[2][6:11] == ("tcp", None, None, None, None)
    # IPv6 and icmp type/code in the port columns, as Zeek logs them
    assert got[3][2:7] == ("fe80::1ff:fe23:4567:890a", 133, "ff02::2", 134, "icmp")
    assert got[3][8:11] == (0.0, 0, 0)


def test_gzip_rotated_log(case: Case) -> None:
    path = DATA / "conn.04:00:00-05:00:00.log.gz"
    res = load(case, path)
    assert (res.records_ok, res.records_bad) == (2, 0)
    got = rows(case, "SELECT ts, uid, bytes_out, duration, source_ref FROM conn ORDER BY ts")
    assert got == [
        (utc(2026, 4, 12, 4, 13, 21, 500000), "CmES5u32sYpV7JYN", 1048576, 300.25, "line 9"),
        (utc(2026, 4, 12, 4, 13, 25), "CP5BVa2wCaJzGbsLCd", 999, 299.0, "line 10"),
    ]


def test_truncated_gzip_keeps_what_was_read(case: Case, tmp_path: Path) -> None:
    text = (DATA / "conn.log").read_text() * 200  # repeated blocks: each '#fields' restarts a block
    data = gzip.compress(text.encode(), mtime=0)
    path = tmp_path / "conn.log.gz"
    path.write_bytes(data[: len(data) // 2])
    res = zeek.ingest(case, path, "zeek_tsv")
    assert res.records_ok > 0
    assert res.records_bad == 1
    assert "unreadable" in res.errors[0][1]
    assert rows(case, "SELECT count(*) FROM conn")[0][0] == res.records_ok


def test_malformed_lines_counted_and_rest_loaded(case: Case) -> None:
    res = load(case, DATA / "conn_partial.log")
    # no '#close' trailer (file still open at collection): nothing special, the rows are there
    assert (res.records_ok, res.records_bad) == (2, 3)
    assert res.errors == [
        ("line 10", "expected 21 fields, got 5"),
        ("line 11", "src_port: out of range: '70000'"),
        ("line 12", "no ts"),
    ]
    assert rows(case, "SELECT uid, source_ref FROM conn ORDER BY ts") == [
        ("CHhAvVGS1DHFjwGM9", "line 9"),
        ("C4J4Th3PJpwUYZZ6gc", "line 13"),
    ]


def test_dns_vectors_empty_and_unset(case: Case) -> None:
    res = load(case, DATA / "dns.log")
    assert (res.records_ok, res.records_bad) == (3, 0)
    got = rows(case, "SELECT src_ip, query, qtype, rcode, answers, uid, source FROM dns ORDER BY ts")
    assert got == [
        # vector[string] answers kept comma-joined, qtype/rcode by name
        (
            "10.20.1.15",
            "updates.meterco.example",
            "A",
            "NOERROR",
            "cdn.meterco.example,203.0.113.40",
            "C4J4Th3PJpwUYZZ6gc",
            "zeek",
        ),
        # (empty) vector -> '' (an answer section that was present and empty)
        ("10.20.1.15", "aGVsbG8.t.exfil.example", "TXT", "NXDOMAIN", "", "CqM1rR1r5H4zJ9R2x7", "zeek"),
        # '-' (unset) -> NULL
        ("10.20.1.16", None, None, "NOERROR", None, "CXWv6p3arKYeMETxOg", "zeek"),
    ]


def test_http_escapes_and_sets(case: Case) -> None:
    res = load(case, DATA / "http.log")
    assert (res.records_ok, res.records_bad) == (2, 0)
    got = rows(
        case,
        "SELECT method, host, uri, user_agent, status_code, request_body_len, "
        "response_body_len, resp_mime_types, dst_port FROM http ORDER BY ts",
    )
    assert got[0] == (
        "GET",
        "updates.meterco.example",
        "/fw/hes-4.2.1.bin?sig=a\tb",
        "MeterCo-Updater/4.2",
        200,
        0,
        5242880,
        "application/octet-stream,application/x-dosexec",
        80,
    )
    # a literal '-' user agent is escaped by Zeek as \x2d so it is not read as unset
    assert got[1][3] == "-"
    assert got[1][7] == ""  # (empty) resp_mime_types
    assert got[1][4:7] == (204, 128, 0)


def test_ssl_to_tls_by_name_not_position(case: Case) -> None:
    res = load(case, DATA / "ssl.log")
    assert (res.records_ok, res.records_bad) == (2, 0)
    got = rows(
        case,
        "SELECT uid, version, server_name, subject, issuer, ja3, established, dst_port FROM tls ORDER BY ts",
    )
    assert got == [
        (
            "CHhAvVGS1DHFjwGM9",
            "TLSv12",
            "updates.meterco.example",
            "CN=updates.meterco.example,O=MeterCo,C=US",
            "CN=MeterCo Issuing CA 2,O=MeterCo,C=US",
            "72a589da586844d7f0818ce684948eea",
            True,
            443,
        ),
        ("Cp3uM7bTbrDnQk8Ry", None, None, None, None, None, False, 8443),
    ]


def test_other_zeek_log_types_skipped_with_reason(case: Case, tmp_path: Path) -> None:
    for name, kind in (("weird.log", "weird"), ("notice.log", "notice")):
        res = load(case, DATA / name)
        assert (res.records_ok, res.records_bad, res.errors) == (0, 0, [])
        assert res.skipped_reason == f"zeek log type not loaded by gridhunt: {kind}"
    # beside a loaded block, another type's lines are passed over: neither loaded nor bad
    path = tmp_path / "mixed.log"
    path.write_text((DATA / "weird.log").read_text() + (DATA / "conn.log").read_text())
    res = load(case, path)
    assert (res.records_ok, res.records_bad, res.skipped_reason) == (4, 0, None)


def test_json_epoch_and_arrays(case: Case) -> None:
    res = load(case, DATA / "json" / "dns.log")
    assert (res.format, res.records_ok, res.records_bad) == ("zeek_json", 2, 0)
    got = rows(case, "SELECT ts, query, qtype, rcode, answers, source_ref FROM dns ORDER BY ts")
    assert got == [
        (
            utc(2026, 4, 12, 3, 14, 15, 900000),
            "updates.meterco.example",
            "A",
            "NOERROR",
            "cdn.meterco.example,203.0.113.40",
            "line 1",
        ),
        # JSON omits unset fields: no answers key -> NULL; float ts exact to the microsecond
        (utc(2026, 4, 12, 3, 14, 17, 123456), "aGVsbG8.t.exfil.example", "TXT", "NXDOMAIN", None, "line 2"),
    ]


def test_json_iso_timestamps_zeek6_ssl(case: Case) -> None:
    res = load(case, DATA / "json" / "ssl.log")
    assert (res.records_ok, res.records_bad) == (1, 0)
    assert rows(case, "SELECT ts, version, server_name, subject, established FROM tls") == [
        (utc(2026, 4, 12, 3, 14, 15, 200000), "TLSv13", "updates.meterco.example", None, True)
    ]


def test_json_mixed_stream_by_path(case: Case) -> None:
    path = DATA / "zeek-stream.json"
    res = load(case, path)
    # conn + x509 + dns + http (nested id) loaded; a cut line and a bad port bad
    assert (res.records_ok, res.records_bad) == (4, 2)
    assert [e[0] for e in res.errors] == ["line 4", "line 6"]
    assert res.errors[0][1].startswith("invalid JSON")
    assert res.errors[1][1] == "src_port: not an integer: 'http'"
    assert rows(case, "SELECT uid, dst_port, service, bytes_out, source_ref FROM conn") == [
        ("CtPZjS20MLrsMUOJi2", 502, None, None, "line 1")
    ]
    assert rows(case, "SELECT uid, query, rcode, source_ref FROM dns") == [
        ("CXWv6p3arKYeMETxOg", None, "NOERROR", "line 3")
    ]
    assert rows(
        case, "SELECT src_ip, dst_ip, dst_port, user_agent, resp_mime_types, source_ref FROM http"
    ) == [("10.30.5.7", "198.51.100.7", 8080, "-", "text/plain", "line 5")]
    # Zeek < 5 x509: `id` is the certificate's file id
    assert rows(case, "SELECT fuid, fingerprint, version, serial, source_ref FROM x509") == [
        ("FlbXjX3Cq2UKzTgYc7", None, 3, "0A1B", "line 2")
    ]


def test_multiple_header_blocks_in_one_file(case: Case, tmp_path: Path) -> None:
    # `cat conn.log dns.log > all.log`: each block has its own #path/#fields
    path = tmp_path / "all.log"
    path.write_text((DATA / "conn.log").read_text() + (DATA / "dns.log").read_text())
    res = load(case, path)
    assert (res.records_ok, res.records_bad) == (7, 0)
    assert rows(case, "SELECT count(*) FROM conn")[0][0] == 4
    assert rows(case, "SELECT min(source_ref), max(source_ref) FROM dns")[0] == ("line 22", "line 24")


def test_data_before_header_and_large_batches(case: Case, tmp_path: Path) -> None:
    lines = (DATA / "conn.log").read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("#") and not ln.startswith("#close")]
    row = lines[8].split("\t")
    body = []
    for i in range(120_001):  # crosses two batch boundaries
        row[1] = f"C{i}"
        body.append("\t".join(row))
    path = tmp_path / "conn.big.log"
    path.write_text("stray line\n" + "\n".join(header + body) + "\n")
    res = zeek.ingest(case, path, "zeek_tsv")
    assert (res.records_ok, res.records_bad) == (120_001, 1)
    assert res.errors == [("line 1", "data line before any #fields header")]
    assert rows(
        case, "SELECT count(*), count(DISTINCT uid), max(source_ref) FROM conn WHERE uid='C120000'"
    ) == [(1, 1, f"line {len(header) + 1 + 120_001}")]
    assert rows(case, "SELECT count(*) FROM conn")[0][0] == 120_001


def test_progress_reports_bytes_on_disk(case: Case, tmp_path: Path) -> None:
    text = (DATA / "conn.log").read_text() * 3000  # enough lines for several progress calls
    path = tmp_path / "conn.log.gz"
    path.write_bytes(gzip.compress(text.encode(), mtime=0))
    steps: list[int] = []
    res = zeek.ingest(case, path, "zeek_tsv", progress=steps.append)
    assert res.records_ok == 4 * 3000
    assert len(steps) > 1 and all(s > 0 for s in steps)
    assert sum(steps) == path.stat().st_size  # compressed bytes, matching the file size on disk
