"""Zeek x509.log and files.log (TSV and JSON, old and new field layouts) into the x509 / files tables."""

from __future__ import annotations

import hashlib
from functools import partial

from gridhunt.case import Case
from gridhunt.ingest import zeek
from gridhunt.ingest._common import SCHEMAS
from tests.conftest import TEST_DATA, rows, sniff_and_ingest, utc

DATA = TEST_DATA / "zeek"
load = partial(sniff_and_ingest, zeek)

X509_COLS = (
    "fingerprint, fuid, version, serial, subject, issuer, not_valid_before, not_valid_after, key_alg, key_length, "
    "san_dns, basic_constraints_ca, host_cert, client_cert"
)
FILES_COLS = (
    "fuid, uid, tx_hosts, rx_hosts, source, analyzers, mime_type, filename, duration, is_orig, seen_bytes, "
    "total_bytes, missing_bytes, md5, sha1, sha256, extracted"
)
BY_LINE = "CAST(substr(source_ref, 6) AS INTEGER)"  # 'line 9' before 'line 10'


def sha(kind: str, text: str) -> str:
    return hashlib.new(kind, text.encode()).hexdigest()


def test_case_tables_match_the_arrow_schemas(case: Case) -> None:
    for table in ("x509", "files"):
        assert case.columns(table) == list(SCHEMAS[table])


def test_x509_zeek5_fingerprint_layout(case: Case) -> None:
    path = DATA / "x509.log"
    res = load(case, path)
    assert (res.format, res.records_ok, res.records_bad, res.errors) == ("zeek_tsv", 3, 0, [])
    got = rows(case, f"SELECT ts, {X509_COLS}, source_file, source_ref FROM x509 ORDER BY {BY_LINE}")
    leaf, ca, rtu = got
    assert leaf == (
        utc(2026, 4, 12, 3, 14, 15, 200000),
        sha("sha256", "updates.meterco.example"),
        None,  # Zeek >= 5 logs no file id
        3,
        "4F1A0A1B9C2D",
        "CN=updates.meterco.example,O=MeterCo,C=US",  # commas in a plain string field are data
        "CN=MeterCo Issuing CA 2,O=MeterCo,C=US",
        utc(2026, 1, 1),
        utc(2027, 1, 1),
        "rsaEncryption",
        2048,
        "updates.meterco.example,*.updates.meterco.example",  # vector[string], comma-joined
        False,
        True,
        False,
        str(path.resolve()),
        "line 9",
    )
    # a CA: basic_constraints.ca T; unset ('-') SAN list -> NULL
    assert ca[1] == sha("sha256", "MeterCo Issuing CA 2")
    assert (ca[9], ca[10], ca[11], ca[12:15]) == ("id-ecPublicKey", 384, None, (True, False, False))
    # an OT device's self-signed cert: validity from before 1970 (negative epoch) to 9999; (empty) SAN -> ''
    assert rtu[7:9] == (utc(1969, 12, 31), utc(9999, 12, 31, 23, 59, 59))
    assert (rtu[4], rtu[11], rtu[12], rtu[13], rtu[14]) == ("00", "", None, False, True)


def test_x509_zeek4_id_layout(case: Case) -> None:
    res = load(case, DATA / "x509.zeek4.log")
    assert (res.records_ok, res.records_bad) == (1, 0)
    got = rows(case, f"SELECT {X509_COLS} FROM x509")[0]
    # `id` (the certificate's file id) instead of `fingerprint`; no host_cert / client_cert fields yet
    assert got[:4] == (None, "FlbXjX3Cq2UKzTgYc7", 3, "4F1A0A1B9C2D")
    assert got[10:] == ("updates.meterco.example", False, None, None)


def test_x509_gzip_rotated(case: Case) -> None:
    path = DATA / "x509.00:00:00-01:00:00.log.gz"
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    res = load(case, path)
    assert (res.format, res.records_ok, res.records_bad) == ("zeek_tsv", 1, 0)
    assert rows(case, "SELECT ts, serial, san_dns, host_cert, source_ref FROM x509") == [
        (utc(2026, 4, 12, 0, 0, 0, 1), "4F1A0A1B9C2D", "updates.meterco.example", True, "line 9")
    ]


def test_files_zeek6_uid_and_conn_id(case: Case) -> None:
    path = DATA / "files.log"
    res = load(case, path)
    assert (res.records_ok, res.records_bad, res.errors) == (4, 0, [])
    got = rows(case, f"SELECT ts, {FILES_COLS}, source_file, source_ref FROM files ORDER BY ts")
    fw = "hes-4.2.1.bin"
    assert got[0] == (
        utc(2026, 4, 12, 3, 14, 22, 104100),
        "FaB1xK3k9uGd0Mq1ie",
        "CRJuHdVW0XPVINV8a",
        "203.0.113.40",  # is_orig F: the responder sent the file
        "10.20.1.15",
        "HTTP",  # Zeek's own `source` field: the protocol the file came over
        "EXTRACT,MD5,PE,SHA1,SHA256",
        "application/x-dosexec",
        fw,
        0.51234,
        False,
        5242880,
        5242880,
        0,
        sha("md5", fw),
        sha("sha1", fw),
        sha("sha256", fw),
        "HTTP-FaB1xK3k9uGd0Mq1ie.exe",
        str(path.resolve()),
        "line 9",
    )
    # upload (is_orig T): the originator sent it; (empty) analyzers -> '', unset sizes / hashes -> NULL
    assert got[1][3:7] == ("10.30.5.7", "198.51.100.7", "HTTP", "")
    assert got[1][8:] == (None, 0.0, True, 128, None, 0, None, None, None, None, str(path.resolve()), "line 10")
    # a UTF-8 name escaped byte by byte comes back as text; a byte that is not UTF-8 stays \xHH
    assert got[2][8] == "\\\\fs01\\share\\счет.xlsm"
    assert got[3][3:5] == ("10.10.0.20", "10.20.1.15")  # SMB read: the server sent it
    assert got[3][8] == "report\\xff.doc"


def test_files_zeek5_sets_of_hosts_and_conn_uids(case: Case) -> None:
    res = load(case, DATA / "files.zeek5.log")
    assert (res.records_ok, res.records_bad) == (2, 0)
    got = rows(case, "SELECT fuid, uid, tx_hosts, rx_hosts, source, analyzers, total_bytes, missing_bytes FROM files")
    assert got == [
        ("FlbXjX3Cq2UKzTgYc7", "CHhAvVGS1DHFjwGM9", "203.0.113.40", "10.20.1.15", "SSL", "MD5,SHA1,X509", None, 0),
        # conn_uids / tx_hosts are sets: comma-joined, as for every set field
        ("FmIrR8q2", "C1aaaa,C2bbbb", "203.0.113.40,203.0.113.41", "10.20.1.15", "HTTP", "MD5,SHA1", 2000, 1000),
    ]


def test_tls_to_certificate_through_files_and_x509(case: Case) -> None:
    # Zeek < 5: ssl.log's connection -> files.log (uid, fuid) -> x509.log (fuid = id)
    for name in ("ssl.log", "files.zeek5.log", "x509.zeek4.log"):
        load(case, DATA / name)
    got = rows(
        case,
        "SELECT t.server_name, x.subject, x.not_valid_after FROM tls t "
        "JOIN files f ON f.uid = t.uid JOIN x509 x ON x.fuid = f.fuid",
    )
    assert got == [("updates.meterco.example", "CN=updates.meterco.example,O=MeterCo,C=US", utc(2027, 1, 1))]


def test_json_x509_iso_times_and_zeek4_shape(case: Case) -> None:
    res = load(case, DATA / "json" / "x509.log")
    assert (res.format, res.records_ok, res.records_bad) == ("zeek_json", 2, 0)
    got = rows(case, f"SELECT ts, {X509_COLS} FROM x509 ORDER BY {BY_LINE}")
    # JSON::TimestampFormat TS_ISO8601: every time field is ISO text
    assert got[0][:3] == (utc(2026, 4, 12, 3, 14, 15, 200000), sha("sha256", "updates.meterco.example"), None)
    assert got[0][7:] == (
        utc(2026, 1, 1),
        utc(2027, 1, 1),
        "rsaEncryption",
        2048,
        "updates.meterco.example,*.updates.meterco.example",  # JSON array, comma-joined
        False,
        True,
        False,
    )
    # epoch floats, negative before 1970; [] -> ''; omitted fields -> NULL
    assert got[1][1:4] == (None, "FlbXjX3Cq2UKzTgYc7", 3)
    assert got[1][7:] == (utc(1969, 12, 31), utc(9999, 12, 31, 23, 59, 59), None, None, "", True, None, None)


def test_json_files_both_layouts(case: Case) -> None:
    res = load(case, DATA / "json" / "files.log")
    assert (res.records_ok, res.records_bad) == (2, 0)
    got = rows(case, "SELECT uid, tx_hosts, rx_hosts, analyzers, filename, is_orig, sha256 FROM files ORDER BY ts")
    assert got == [
        # Zeek >= 6: uid and dotted id.* keys; is_orig F -> the responder sent it
        ("CRJuHdVW0XPVINV8a", "203.0.113.40", "10.20.1.15", "EXTRACT,MD5,PE,SHA1,SHA256", "hes-4.2.1.bin", False,
         sha("sha256", "hes-4.2.1.bin")),
        # Zeek < 6: arrays of hosts / conn uids; [] analyzers -> ''; a ',' in a plain string stays
        ("C1aaaa,C2bbbb", "203.0.113.40,203.0.113.41", "10.20.1.15", "", "fw,v2.zip", False, None),
    ]  # fmt: skip
