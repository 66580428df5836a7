"""Zeek format quirks, one test each: header-driven separators and markers, sets / vectors, escapes, footers,
headers mid-file, JSON timestamp formats, cut files, wrong column counts, bytes that are not UTF-8."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from gridhunt.case import Case
from gridhunt.ingest import zeek
from tests.conftest import TEST_DATA, rows, sniff_and_ingest, utc

DATA = TEST_DATA / "zeek"
load = partial(sniff_and_ingest, zeek)


def test_header_separators_and_markers_are_read_not_assumed(case: Case) -> None:
    # '#separator \x7c', '#set_separator ;', '#empty_field EMPTY', '#unset_field NULL' (all redef-able in Zeek)
    res = load(case, DATA / "dns.custom-separators.log")
    assert (res.format, res.records_ok, res.records_bad, res.errors) == ("zeek_tsv", 2, 0, [])
    assert rows(case, "SELECT uid, query, rcode, answers FROM dns ORDER BY ts") == [
        # the set is re-joined with ','; a ',' inside an element (not escaped by Zeek here) becomes \x2c
        ("CaltA", "updates.meterco.example", "NOERROR", "cdn.meterco.example,203.0.113.40,a\\x2cb"),
        # with '#unset_field NULL' a '-' is a value, and EMPTY is the empty set
        ("CaltB", "-", "NXDOMAIN", ""),
    ]


def test_set_and_vector_fields(case: Case) -> None:
    # conn tunnel_parents (set[string]) with two uids, one uid and (empty): every other column stays in place
    res = load(case, DATA / "conn.two-headers.log")
    assert (res.records_ok, res.records_bad) == (4, 0)
    assert rows(case, "SELECT uid, dst_port, bytes_out, bytes_in FROM conn ORDER BY ts") == [
        ("CinnerA", 20000, 100, 200),
        ("CplainB", 20000, 100, 200),
        ("CnewC", 502, 100, 200),
        ("CnewD", 502, 100, 200),
    ]
    # dns answers + TTLs (vector[string], vector[interval]) and http resp_mime_types: see the dns / http tests
    res = load(case, DATA / "dns.escapes.log")
    assert (res.records_ok, res.records_bad) == (2, 0)
    assert rows(case, "SELECT answers FROM dns ORDER BY ts") == [
        ("TXT 21 cmd=ls\\x2c-la\\x2c/etc/scada,TXT 5 hello",),
        ("",),
    ]


def test_empty_set_and_unset_stay_distinct(case: Case) -> None:
    load(case, DATA / "dns.log")
    load(case, DATA / "x509.log")
    load(case, DATA / "files.log")
    # (empty) -> '' (the field was there and held nothing); '-' -> NULL (the field was never set)
    assert rows(case, "SELECT answers FROM dns ORDER BY ts") == [("cdn.meterco.example,203.0.113.40",), ("",), (None,)]
    assert rows(case, "SELECT san_dns IS NULL, san_dns FROM x509 WHERE serial IN ('0B77', '00') ORDER BY serial") == [
        (False, ""),
        (True, None),
    ]
    # for numbers, booleans and times there is no empty value: both are NULL
    assert rows(case, "SELECT analyzers, total_bytes, md5 FROM files WHERE fuid = 'Fq7a'") == [("", None, None)]


def test_escaped_tab_and_comma(case: Case) -> None:
    res = load(case, DATA / "dns.escapes.log")
    assert (res.records_ok, res.records_bad) == (2, 0)
    got = rows(case, "SELECT query, answers FROM dns ORDER BY ts")
    # inside a set element \x2c stays escaped, so the joined list still splits on ','
    assert got[0] == ("c2.exfil.example", "TXT 21 cmd=ls\\x2c-la\\x2c/etc/scada,TXT 5 hello")
    assert rows(case, "SELECT len(string_split(answers, ',')) FROM dns WHERE uid = 'CtxtA'") == [(2,)]
    # in a plain string field \x2c and \x09 are the characters themselves
    assert got[1] == ("odd,name\tx.example", "")


def test_close_footer_is_not_a_record(case: Case, tmp_path: Path) -> None:
    res = load(case, DATA / "conn.log")  # ends with '#close'
    assert (res.records_ok, res.records_bad, res.errors) == (4, 0, [])
    # a footer cut short (no end of line) loses nothing either
    path = tmp_path / "conn.log"
    path.write_text((DATA / "conn.log").read_text()[:-5])
    res = load(case, path)
    assert (res.records_ok, res.records_bad, res.errors) == (4, 0, [])


def test_second_fields_header_mid_file(case: Case) -> None:
    # rotations concatenated: after '#close', a bare '#fields' with four more columns applies from there
    # (read with the first header, those 25-field lines would be bad)
    res = load(case, DATA / "conn.two-headers.log")
    assert (res.records_ok, res.records_bad, res.errors) == (4, 0, [])
    assert rows(case, "SELECT uid, src_ip, dst_ip, source_ref FROM conn ORDER BY ts") == [
        ("CinnerA", "10.20.1.15", "10.40.0.21", "line 9"),
        ("CplainB", "10.20.1.15", "10.40.0.21", "line 10"),
        ("CnewC", "10.20.1.16", "10.40.0.22", "line 14"),
        ("CnewD", "10.20.1.16", "10.40.0.22", "line 15"),
    ]


def test_gzip_rotated_names(case: Case) -> None:
    # 'conn.04:00:00-05:00:00.log.gz' is covered in test_ingest_zeek.py; here a second log type
    res = load(case, DATA / "x509.00:00:00-01:00:00.log.gz")
    assert (res.records_ok, res.records_bad) == (1, 0)
    assert rows(case, "SELECT count(*) FROM x509")[0][0] == 1


def test_json_timestamp_formats(case: Case) -> None:
    # JSON::TimestampFormat: TS_EPOCH (float), TS_ISO8601 (text), TS_MILLIS (integer milliseconds)
    load(case, DATA / "json" / "dns.log")
    load(case, DATA / "json" / "ssl.log")
    res = load(case, DATA / "json" / "conn.millis.log")
    assert (res.records_ok, res.records_bad) == (1, 0)
    assert rows(case, "SELECT ts FROM dns ORDER BY ts LIMIT 1") == [(utc(2026, 4, 12, 3, 14, 15, 900000),)]
    assert rows(case, "SELECT ts FROM tls") == [(utc(2026, 4, 12, 3, 14, 15, 200000),)]
    assert rows(case, "SELECT ts, uid, duration FROM conn") == [
        (utc(2026, 4, 12, 3, 14, 15, 123000), "CmsA", 12.503211)
    ]


def test_json_dotted_and_nested_id_keys(case: Case) -> None:
    load(case, DATA / "json" / "files.log")  # "id.orig_h": ...
    load(case, DATA / "zeek-stream.json")  # "id": {"orig_h": ...} on the http line
    assert rows(case, "SELECT tx_hosts, rx_hosts FROM files WHERE fuid = 'FaB1xK3k9uGd0Mq1ie'") == [
        ("203.0.113.40", "10.20.1.15")
    ]
    assert rows(case, "SELECT src_ip, dst_ip, dst_port FROM http") == [("10.30.5.7", "198.51.100.7", 8080)]


def test_truncated_last_line_tsv(case: Case, tmp_path: Path) -> None:
    # the sensor was still writing: no '#close', the last line stops mid-record with no end of line
    res = load(case, DATA / "conn.truncated.log")
    assert (res.records_ok, res.records_bad) == (2, 1)
    assert res.errors == [("line 11", "truncated last line (no end of line): 11 of 21 fields")]
    assert rows(case, "SELECT uid FROM conn ORDER BY ts") == [("CgoodA",), ("CgoodC",)]
    # cut inside the last field: the count is right but the value may be short, so it is not loaded either
    text = (DATA / "conn.log").read_text()
    path = tmp_path / "conn.log"
    path.write_text(text[: text.index("\n#close")][:-6])
    res = load(case, path)
    assert (res.records_ok, res.records_bad) == (3, 1)
    assert res.errors == [("line 12", "truncated last line (no end of line): 21 of 21 fields")]


def test_truncated_last_line_json(case: Case) -> None:
    res = load(case, DATA / "json" / "conn.truncated.log")
    assert (res.records_ok, res.records_bad) == (1, 1)
    assert res.errors[0][0] == "line 2" and res.errors[0][1].startswith("invalid JSON")
    assert rows(case, "SELECT uid FROM conn") == [("CjA",)]


def test_wrong_number_of_columns(case: Case) -> None:
    res = load(case, DATA / "conn.bad-columns.log")
    assert (res.records_ok, res.records_bad) == (2, 1)
    assert res.errors == [("line 10", "expected 21 fields, got 19")]
    assert rows(case, "SELECT uid, source_ref FROM conn ORDER BY ts") == [("CgoodA", "line 9"), ("CgoodC", "line 11")]


def test_values_too_large_for_their_column_are_bad_lines(case: Case, tmp_path: Path) -> None:
    # one absurd value must cost its line, not the Arrow batch (and so the file) it would have gone into
    lines = (DATA / "http.log").read_text().splitlines()
    lines[8] = lines[8].replace("\t200\tOK\t", "\t99999999999\tOK\t")  # status_code is INTEGER
    lines[9] = lines[9].replace("1775963663.500000", "99999999999999999999.5")
    path = tmp_path / "http.log"
    path.write_text("\n".join(lines) + "\n")
    res = load(case, path)
    assert (res.records_ok, res.records_bad) == (0, 2)
    assert res.errors == [
        ("line 9", "status_code: out of range: '99999999999'"),
        ("line 10", "ts: bad epoch time '99999999999999999999.5'"),
    ]
    path = tmp_path / "conn.json"
    good = '{"_path":"conn","ts":1775963700.5,"uid":"C1","id.orig_h":"10.0.0.1"'
    path.write_text(good + ',"ts":1e30}\n' + good + ',"orig_bytes":99999999999999999999}\n' + good + "}\n")
    res = load(case, path)
    assert (res.records_ok, res.records_bad) == (1, 2)
    assert res.errors == [
        ("line 1", "ts: out of range: 1e+30"),
        ("line 2", "bytes_out: out of range: 1e+20"),  # orjson reads it as a float
    ]


def test_non_utf8_bytes(case: Case) -> None:
    res = load(case, DATA / "http.non-utf8.log")
    assert (res.records_ok, res.records_bad) == (2, 0)
    got = rows(case, "SELECT uri, user_agent FROM http ORDER BY ts")
    # a raw byte that is not UTF-8 (Latin-1 e-acute) is kept as \xHH, the way Zeek writes such bytes;
    # UTF-8 that Zeek escaped byte by byte is decoded
    assert got == [("/caf\\xe9.html", "Привет-Agent/1.0"), ("/ok", "curl/8.5.0")]
    # JSON: the line still parses; the byte becomes U+FFFD
    res = load(case, DATA / "json" / "http.non-utf8.log")
    assert (res.records_ok, res.records_bad) == (1, 0)
    assert rows(case, "SELECT uri FROM http WHERE uid = 'CjUtf'") == [("/caf\ufffd.html",)]
