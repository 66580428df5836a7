"""Windows logon events become auth rows with their codes decoded."""

from __future__ import annotations

from pathlib import Path

from gridhunt.case import Case
from gridhunt.ingest import ingest_paths
from tests.conftest import TEST_DATA, rows, utc

LOGONS = TEST_DATA / "auth" / "windows_logons.jsonl"


def _auth(case: Case) -> dict[int, dict]:
    cur = case.con.execute("SELECT * FROM auth ORDER BY ts")
    names = [d[0] for d in cur.description]
    out: dict[int, dict] = {}
    for values in cur.fetchall():
        r = dict(zip(names, values, strict=True))
        out[100 + int(r["source_ref"].removeprefix("line "))] = r  # = the EventRecordID in the file
    return out


def test_each_logon_event_becomes_one_decoded_auth_row(case: Case) -> None:
    report = ingest_paths(case, [LOGONS])
    assert report.records_ok == 11
    assert report.auth_rows_from_windows == 10  # the 4672 is not an authentication attempt
    a = _auth(case)
    assert sorted(a) == list(range(101, 111))

    logon = a[101]
    assert (logon["user"], logon["domain"], logon["src_ip"], logon["src_host"]) == (
        "jsmith",
        "GRID",
        "10.1.20.7",
        "WS07",
    )
    assert (logon["dst_host"], logon["outcome"], logon["logon_type"], logon["auth_package"]) == (
        "ws07.grid.example",
        "success",
        "10",
        "Negotiate",
    )
    assert logon["ts"] == utc(2026, 4, 2, 8, 0, 0)
    assert logon["source"] == "windows" and logon["source_file"] == str(LOGONS.resolve())

    # 4625: the generic 0xc000006d status is explained by its SubStatus; '-' means no address
    bad = a[102]
    assert (bad["outcome"], bad["failure_reason"], bad["src_ip"], bad["src_host"]) == (
        "failure",
        "bad password",
        None,
        None,
    )
    assert (bad["status"], bad["sub_status"]) == ("0xc000006d", "0xc000006a")
    # IPv4-mapped IPv6, as DCs write addresses, becomes IPv4
    assert (a[103]["src_ip"], a[103]["failure_reason"]) == ("10.1.99.9", "unknown user name")

    explicit = a[104]
    assert (explicit["user"], explicit["subject_user"], explicit["src_host"], explicit["dst_host"]) == (
        "adm-jsmith",
        "jsmith",
        "ws07.grid.example",
        "fs01.grid.example",
    )

    asrep = a[105]
    assert (asrep["event_id"], asrep["pre_auth_type"], asrep["ticket_encryption"], asrep["outcome"]) == (
        4768,
        "0",
        "0x17",
        "success",
    )
    assert asrep["auth_package"] == "Kerberos" and asrep["ticket_options"] == "0x40810010"

    tgs = a[106]  # user@REALM split as 4624 stores it
    assert (tgs["user"], tgs["domain"], tgs["service"], tgs["ticket_encryption"]) == (
        "jsmith",
        "GRID.EXAMPLE",
        "MSSQLSvc",
        "0x17",
    )

    assert (a[107]["outcome"], a[107]["failure_reason"]) == ("failure", "pre-authentication failed (bad password)")
    ntlm = a[108]
    assert (ntlm["src_host"], ntlm["outcome"], ntlm["failure_reason"], ntlm["auth_package"]) == (
        "WS07",
        "failure",
        "bad password",
        "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0",
    )
    lock = a[109]  # 4740 names the caller computer in TargetDomainName
    assert (lock["outcome"], lock["src_host"], lock["domain"], lock["failure_reason"]) == (
        "lockout",
        "WS07",
        None,
        "account locked out",
    )
    assert (a[110]["outcome"], a[110]["failure_reason"]) == ("failure", "client not found in Kerberos database")


def test_a_second_ingest_run_adds_only_its_own_events(case: Case, tmp_path: Path) -> None:
    ingest_paths(case, [LOGONS])
    copy = tmp_path / "more.jsonl"
    copy.write_text(LOGONS.read_text().splitlines()[0] + "\n")
    report = ingest_paths(case, [copy])
    assert report.auth_rows_from_windows == 1
    assert rows(case, "SELECT count(*) FROM auth")[0][0] == 11


def test_old_case_files_gain_the_new_auth_columns(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        'CREATE TABLE auth (ts TIMESTAMPTZ, "user" VARCHAR, domain VARCHAR, src_ip VARCHAR, src_host VARCHAR, '
        "dst_host VARCHAR, outcome VARCHAR, logon_type VARCHAR, auth_package VARCHAR, failure_reason VARCHAR, "
        "source VARCHAR, source_file VARCHAR, source_ref VARCHAR)"
    )
    con.close()
    with Case.open(path) as c:
        assert {"event_id", "ticket_encryption", "pre_auth_type"} <= set(c.columns("auth"))
        ingest_paths(c, [LOGONS])
        assert rows(c, "SELECT count(*) FROM auth WHERE event_id = 4769")[0][0] == 1
