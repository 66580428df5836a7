"""ICS Zeek logs into `ics`: Zeek's modbus / dnp3 and ICSNPP's bacnet / enip / cip / s7comm / c1222, TSV and
JSON, field by field; the write / control classification; bad lines counted; sibling logs skipped."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from gridhunt.case import Case
from gridhunt.ingest import ingest_paths, zeek, zeek_ics
from tests.conftest import TEST_DATA, rows, sniff_and_ingest, utc

DATA = TEST_DATA / "ics"
load = partial(sniff_and_ingest, zeek)
COLS = "ts, uid, src_ip, src_port, dst_ip, dst_port, protocol, function, direction, is_write, is_control"
T0 = utc(2026, 4, 12, 10, 0, 0)


def ics(case: Case, where: str = "true", cols: str = COLS) -> list[tuple]:
    return rows(case, f"SELECT {cols} FROM ics WHERE {where} ORDER BY source_file, ts, source_ref")


def details(case: Case, ref: str) -> dict:
    return json.loads(rows(case, "SELECT details FROM ics WHERE source_ref = ?", [ref])[0][0])


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# ---- Modbus -----------------------------------------------------------------------------------------


def test_modbus_zeek7_tsv_request_and_response_rows(case: Case) -> None:
    res = load(case, DATA / "modbus.log")
    assert (res.format, res.records_ok, res.records_bad) == ("zeek_tsv", 7, 2)
    assert res.errors == [("line 15", "expected 11 fields, got 10"), ("line 16", "id.resp_p: out of range: '70000'")]
    got = ics(case, cols=COLS + ", unit_or_address, status, source_ref")
    assert got[0] == (
        at(0.1), "CMbA1", "10.40.0.10", 50210, "10.40.1.21", 502, "modbus", "READ_HOLDING_REGISTERS", "request",
        False, False, "1", None, "line 9",
    )  # fmt: skip
    assert got[1][7:10] == ("READ_HOLDING_REGISTERS", "response", False)
    # a write is a write on its request and its echo; the pair stays master -> outstation on the reply
    assert [g[2:11] for g in got[2:4]] == [
        ("10.40.0.20", 50311, "10.40.1.21", 502, "modbus", "WRITE_SINGLE_REGISTER", d, True, False)
        for d in ("request", "response")
    ]
    # an exception reply names the function it refused: still a write attempt
    assert got[5][7:] == (
        "WRITE_MULTIPLE_COILS_EXCEPTION", "response", True, False, "255", "ILLEGAL_DATA_ADDRESS", "line 14",
    )  # fmt: skip
    # unset tid / unit; DIAGNOSTICS (restart communications, listen-only) is control
    assert got[6][7:] == ("DIAGNOSTICS", "request", False, True, None, None, "line 17")
    assert details(case, "line 9") == {"func": "READ_HOLDING_REGISTERS", "pdu_type": "REQ", "tid": 1, "unit": 1}
    assert details(case, "line 17") == {"func": "DIAGNOSTICS", "pdu_type": "REQ"}


def test_modbus_pre_zeek7_layout_has_no_direction(case: Case) -> None:
    # Zeek < 7: func + exception only, one record per transaction written on the reply
    res = load(case, DATA / "modbus.zeek6.log")
    assert (res.records_ok, res.records_bad) == (3, 0)
    assert ics(case, cols="function, direction, is_write, unit_or_address, status") == [
        ("READ_COILS", None, False, None, None),
        ("WRITE_SINGLE_COIL", None, True, None, None),
        # an exception to a function code Zeek < 7 did not name
        ("unknown-132", None, False, None, "ILLEGAL_DATA_ADDRESS"),
    ]


def test_modbus_json(case: Case) -> None:
    res = load(case, DATA / "json" / "modbus.log")
    assert (res.format, res.records_ok, res.records_bad) == ("zeek_json", 3, 2)
    assert res.errors[0] == ("line 3", "id.resp_p: not an integer: 'modbus'")
    assert res.errors[1][0] == "line 4" and res.errors[1][1].startswith("invalid JSON")
    assert ics(case, cols=COLS + ", unit_or_address, status") == [
        (at(0.1), "CMjA1", "10.40.0.10", 50210, "10.40.1.21", 502, "modbus", "READ_HOLDING_REGISTERS", "request",
         False, False, "1", None),
        # ISO 8601 ts (JSON::TimestampFormat), Corelight's _path / _write_ts
        (at(60.25), "CMjB2", "10.40.0.20", 50311, "10.40.1.21", 502, "modbus", "WRITE_MULTIPLE_REGISTERS", "request",
         True, False, "1", None),
        (at(63), "CMjC3", "10.40.0.20", 50312, "10.40.1.21", 502, "modbus", "MASK_WRITE_REGISTER_EXCEPTION",
         "response", True, False, "1", "ILLEGAL_FUNCTION"),
    ]  # fmt: skip
    # metadata keys are not the record's own fields
    assert details(case, "line 2") == {"func": "WRITE_MULTIPLE_REGISTERS", "pdu_type": "REQ", "tid": 7, "unit": 1}


# ---- DNP3 -------------------------------------------------------------------------------------------


def test_dnp3_tsv(case: Case) -> None:
    res = load(case, DATA / "dnp3.log")
    assert (res.records_ok, res.records_bad) == (6, 2)
    assert res.errors == [("line 15", "ts: bad epoch time 'yesterday'"), ("line 16", "iin: not an integer: '0x8000'")]
    assert ics(case, cols="uid, src_ip, dst_ip, dst_port, function, direction, is_write, is_control, status") == [
        ("CDnA1", "10.40.0.10", "10.40.2.31", 20000, "READ", "request", False, False, ""),
        # IIN = (IIN1 << 8) | IIN2, named bit by bit
        ("CDnA1", "10.40.0.10", "10.40.2.31", 20000, "READ", "request", False, False, "CLASS_1_EVENTS"),
        ("CDnB2", "10.20.1.15", "10.40.2.31", 20000, "DIRECT_OPERATE", "request", False, True, ""),
        ("CDnB2", "10.20.1.15", "10.40.2.31", 20000, "COLD_RESTART", "request", False, True,
         "DEVICE_RESTART NEED_TIME"),
        # a reply with no request (unsolicited) is a response row; the pair keeps the connection's direction
        ("CDnA1", "10.40.0.10", "10.40.2.31", 20000, "UNSOLICITED_RESPONSE", "response", False, False, "BROADCAST"),
        # a request that never got a reply (logged when the connection ends)
        ("CDnC3", "10.40.0.10", "10.40.2.32", 20000, "WRITE", "request", True, False, None),
    ]  # fmt: skip
    assert details(case, "line 12") == {"fc_reply": "RESPONSE", "fc_request": "COLD_RESTART", "iin": 36864}


def test_dnp3_json_nested_id_and_missing_ts(case: Case) -> None:
    res = load(case, DATA / "json" / "dnp3.log")
    assert (res.records_ok, res.records_bad, res.errors) == (3, 1, [("line 4", "no ts")])
    assert ics(case, cols="src_ip, src_port, dst_ip, dst_port, function, direction, is_control, status") == [
        ("10.40.0.10", 40001, "10.40.2.31", 20000, "READ", "request", False, ""),
        ("10.20.1.15", 40100, "10.40.2.31", 20000, "WARM_RESTART", "request", True, "DEVICE_RESTART PARAMETER_ERROR"),
        ("10.40.0.10", 40001, "10.40.2.31", 20000, "UNSOLICITED_RESPONSE", "response", False, "BROADCAST"),
    ]


# ---- BACnet -----------------------------------------------------------------------------------------


def test_bacnet_tsv(case: Case) -> None:
    res = load(case, DATA / "bacnet.log")
    assert (res.records_ok, res.records_bad) == (7, 0)
    assert ics(case, cols="src_ip, dst_ip, dst_port, function, direction, is_write, is_control, status") == [
        ("10.40.0.20", "10.40.3.41", 47808, "read_property", "request", False, False, None),
        ("10.40.0.20", "10.40.3.41", 47808, "read_property", "response", False, False, None),
        ("10.40.0.20", "10.40.3.41", 47808, "write_property", "request", True, False, None),
        ("10.40.0.20", "10.40.3.41", 47808, "write_property", "response", True, False, None),
        ("10.40.0.20", "10.40.3.41", 47808, "reinitialized_device", "request", False, True, None),
        ("10.40.0.20", "10.40.3.41", 47808, "reinitialized_device", "response", False, True, "password-failure"),
        ("10.40.0.20", "255.255.255.255", 47808, "who_is", "request", False, False, None),
    ]
    # ICSNPP's true sender / receiver stay in details, typed from #types
    assert details(case, "line 14") == {
        "bvlc_function": "Original_Unicast_NPDU",
        "destination_h": "10.40.0.20",
        "destination_p": 47808,
        "invoke_id": 3,
        "is_orig": False,
        "pdu_service": "reinitialized_device",
        "pdu_type": "ERROR_PDU",
        "result_code": "password-failure",
        "source_h": "10.40.3.41",
        "source_p": 47808,
    }


def test_bacnet_json(case: Case) -> None:
    res = load(case, DATA / "json" / "bacnet.log")
    assert (res.records_ok, res.records_bad) == (2, 0)
    assert ics(case, cols="ts, uid, function, direction, is_control") == [
        (at(2.0), "CBjA1", "device_communication_control", "request", True),
        (at(2.01), "CBjA1", "device_communication_control", "response", True),
    ]


# ---- EtherNet/IP and CIP ----------------------------------------------------------------------------


def test_enip_tsv_and_json(case: Case) -> None:
    assert load(case, DATA / "enip.log").records_ok == 4
    assert load(case, DATA / "json" / "enip.log").records_ok == 1
    assert ics(case, cols="uid, src_port, dst_ip, protocol, function, direction, is_write, is_control, status") == [
        ("CEnA1", 2222, "10.40.255.255", "enip", "List Identity", "request", False, False, "Success"),
        ("CEnB2", 51515, "10.40.4.51", "enip", "Register Session", "request", False, False, "Success"),
        ("CEnB2", 51515, "10.40.4.51", "enip", "Register Session", "response", False, False, "Success"),
        ("CEnB2", 51515, "10.40.4.51", "enip", "Send RR Data", "request", False, False, "Success"),
        ("CEjB2", 51515, "10.40.4.51", "enip", "Register Session", "request", False, False, "Success"),
    ]
    assert details(case, "line 11")["session_handle"] == "0x1a2b3c4d"


def test_cip_tsv_and_json(case: Case) -> None:
    assert load(case, DATA / "cip.log").records_ok == 6
    assert load(case, DATA / "json" / "cip.log").records_ok == 2
    assert ics(case, cols="protocol, function, direction, is_write, is_control, unit_or_address, status") == [
        ("cip", "Get Attributes All", "request", False, False, "Identity, instance 0x01", None),
        ("cip", "Get Attributes All", "response", False, False, None, "Success"),
        ("cip", "Set Attributes Single", "request", True, False, "TCP/IP Interface, instance 0x01, attribute 0x05",
         None),
        ("cip", "Set Attributes Single", "response", True, False, None, "Privilege Violation"),
        ("cip", "Reset", "request", False, True, "Identity, instance 0x01", None),
        ("cip", "Write Data", "request", True, False, "unknown, instance 0x2a", None),
        ("cip", "Stop", "request", False, True, "Identity, instance 0x01", None),
        ("cip", "Stop", "response", False, True, None, "Device State Conflict"),
    ]  # fmt: skip
    assert details(case, "line 11")["cip_sequence_count"] == 12


# ---- S7comm -----------------------------------------------------------------------------------------


def test_s7comm_tsv(case: Case) -> None:
    res = load(case, DATA / "s7comm.log")
    assert (res.records_ok, res.records_bad) == (11, 0)
    assert ics(case, cols="dst_port, function, direction, is_write, is_control, status") == [
        (102, "Setup Communication", "request", False, False, None),
        (102, "Setup Communication", "response", False, False, "No error"),
        # user-data: the group and its sub-function, direction from the group's Request / Response
        (102, "Request: CPU Functions (Read SZL)", "request", False, False, None),
        (102, "Response: CPU Functions (Read SZL)", "response", False, False, "No error"),
        (102, "Read Variable", "request", False, False, None),
        (102, "Write Variable", "request", True, False, None),
        (102, "Request: Time Functions (Set Clock)", "request", True, False, None),
        (102, "Request Download", "request", False, True, None),
        (102, "Request Download", "response", False, True, "Application relationship error (0x8104)"),
        (102, "PLC Stop", "request", False, True, None),
        (102, "PLC Control (PLC Copy Ram to Rom)", "request", False, True, None),
    ]
    assert details(case, "line 19")["subfunction_code"] == "_MODU"


def test_s7comm_json(case: Case) -> None:
    assert load(case, DATA / "json" / "s7comm.log").records_ok == 2
    assert ics(case, cols="function, direction, is_control, status") == [
        ("PLC Stop", "request", True, None),
        ("PLC Stop", "response", True, "No error"),
    ]


# ---- C12.22 -----------------------------------------------------------------------------------------


def test_c1222_tsv(case: Case) -> None:
    res = load(case, DATA / "c1222.log")
    assert (res.records_ok, res.records_bad) == (5, 0)
    assert ics(case, cols="src_ip, dst_port, function, direction, is_write, unit_or_address, status") == [
        ("10.20.1.15", 1153, "REQ:Partial Read 1", "request", False, "1.3.6.1.4.1.33507.1919.29674", None),
        ("10.20.1.15", 1153, "RESP:OK", "response", False, "1.3.6.1.4.1.33507.1", "RESP:OK"),
        # several EPSEM services in one packet: a write among them makes the record a write
        ("10.20.1.15", 1153, "REQ:Logon,REQ:Full Write,REQ:Logoff", "request", True, "1.3.6.1.4.1.33507.1919.29674",
         None),
        ("10.20.1.15", 1153, "RESP:OK,RESP:OK,RESP:OK", "response", False, "1.3.6.1.4.1.33507.1", "RESP:OK"),
        # encrypted EPSEM: no services to name
        ("10.20.1.15", 1153, None, None, False, "1.3.6.1.4.1.33507.1919.29674", None),
    ]  # fmt: skip
    d = details(case, "line 11")
    assert d["services"] == ["REQ:Logon", "REQ:Full Write", "REQ:Logoff"] and d["is_encrypted_epsem"] is False
    assert d["elements"][0] == "Called AP Title" and d["proto"] == "tcp"
    assert details(case, "line 13")["services"] == []  # (empty)


def test_c1222_json(case: Case) -> None:
    assert load(case, DATA / "json" / "c1222.log").records_ok == 1
    assert ics(case, cols="function, direction, is_write") == [("REQ:Partial Write Offset", "request", True)]


# ---- log types, headers, classification ---------------------------------------------------------------


def test_every_fixture_is_read_as_zeek(case: Case) -> None:
    report = ingest_paths(case, [DATA])
    got = {str(Path(f.path).relative_to(DATA)): (f.format, f.records_ok, f.records_bad) for f in report.files}
    assert got.pop("README.md")[0] is None  # not evidence
    assert all(fmt in ("zeek_tsv", "zeek_json") for fmt, _, _ in got.values()), got
    assert sum(ok for _, ok, _ in got.values()) == rows(case, "SELECT count(*) FROM ics")[0][0] == 63
    assert sum(bad for _, _, bad in got.values()) == 7
    assert rows(case, "SELECT DISTINCT protocol FROM ics ORDER BY 1") == [
        (p,) for p in ("bacnet", "c1222", "cip", "dnp3", "enip", "modbus", "s7comm")
    ]


def test_json_without_path_told_apart_by_keys(case: Case, tmp_path: Path) -> None:
    # one stream, no _path, a file name that says nothing
    recs = [
        {"ts": 1.0, "uid": "C1", "id.orig_h": "10.0.0.1", "id.orig_p": 1, "id.resp_h": "10.0.0.2", "id.resp_p": 502,
         "func": "WRITE_SINGLE_COIL"},
        {"ts": 2.0, "uid": "C2", "id.orig_h": "10.0.0.1", "id.orig_p": 1, "id.resp_h": "10.0.0.3", "id.resp_p": 20000,
         "fc_request": "STOP_APPL"},
        {"ts": 3.0, "uid": "C3", "id.orig_h": "10.0.0.1", "id.orig_p": 1, "id.resp_h": "10.0.0.4", "id.resp_p": 102,
         "rosctr_name": "Job-Request", "function_name": "Download Block"},
        # ICSNPP modbus_detailed carries func too, with the register values: not modbus.log
        {"ts": 4.0, "uid": "C4", "id.orig_h": "10.0.0.1", "id.orig_p": 1, "id.resp_h": "10.0.0.2", "id.resp_p": 502,
         "is_orig": True, "func": "WRITE_SINGLE_COIL", "address": 3, "quantity": 1},
    ]  # fmt: skip
    path = tmp_path / "sensor-export.json"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    res = load(case, path)
    assert (res.records_ok, res.records_bad, res.records_ignored) == (3, 0, 0)
    assert ics(case, cols="protocol, function, is_write, is_control") == [
        ("modbus", "WRITE_SINGLE_COIL", True, False),
        ("dnp3", "STOP_APPL", False, True),
        ("s7comm", "Download Block", False, True),
    ]


def test_icsnpp_sibling_logs_are_skipped_with_reason(case: Case, tmp_path: Path) -> None:
    # bacnet_property.log / cip_io.log share a prefix with logs we load; neither #path nor the name makes them ours
    text = (DATA / "bacnet.log").read_text().replace("#path\tbacnet", "#path\tbacnet_property")
    (tmp_path / "bacnet_property.log").write_text(text)
    res = load(case, tmp_path / "bacnet_property.log")
    assert (res.records_ok, res.records_bad, res.skipped_reason) == (
        0, 0, "zeek log type not loaded by gridhunt: bacnet_property",
    )  # fmt: skip
    line = '{"ts": 1.0, "uid": "C1", "id.orig_h": "10.0.0.1", "connection_id": "0x01", "io_data": "00"}\n'
    (tmp_path / "cip_io.log").write_text(line)
    res = load(case, tmp_path / "cip_io.log")
    assert (res.records_ok, res.skipped_reason) == (0, "zeek log type not loaded by gridhunt: unknown")
    assert rows(case, "SELECT count(*) FROM ics") == [(0,)]


def test_tsv_without_types_line_and_beside_conn(case: Case, tmp_path: Path) -> None:
    # no #types (hand-cut or LogAscii tsv=T): counts, ports and booleans are still typed by name
    text = "".join(ln for ln in (DATA / "bacnet.log").read_text().splitlines(True) if not ln.startswith("#types"))
    conn = (TEST_DATA / "zeek" / "conn.log").read_text()
    path = tmp_path / "mixed.log"
    path.write_text(conn + text)  # a conn block, then an ICSNPP block: each by its own header
    res = load(case, path)
    assert (res.records_ok, res.records_bad) == (4 + 7, 0)
    assert rows(case, "SELECT count(*) FROM conn") == [(4,)]
    (text,) = rows(case, "SELECT details FROM ics WHERE function = 'write_property' AND direction = 'request'")[0]
    d = json.loads(text)
    assert (d["invoke_id"], d["is_orig"], d["source_p"]) == (2, True, 47808)


@pytest.mark.parametrize(
    ("protocol", "function", "expected"),
    [
        ("modbus", "WRITE_MULTIPLE_REGISTERS", ("write", "T0836")),
        ("modbus", "WRITE_SINGLE_COIL_EXCEPTION", ("write", "T0855")),
        ("modbus", "READ_COILS", None),
        ("modbus", "FIRMWARE_REPLACEMENT", ("control", "T0857")),
        ("dnp3", "DIRECT_OPERATE_NR", ("control", "T0855")),
        ("dnp3", "WARM_RESTART", ("control", "T0816")),
        ("dnp3", "OPEN_FILE", ("control", "T0843")),
        ("dnp3", "READ", None),
        ("bacnet", "reinitialize-device", ("control", "T0816")),  # any spelling of the name
        ("bacnet", "Write-Property", ("write", "T0836")),
        ("cip", "set_attributes_single", ("write", "T0836")),
        ("cip", "Get Attributes Single", None),
        ("s7comm", "PLC Stop", ("control", "T0858")),
        ("c1222", "REQ:Partial Write 3", ("write", "T0836")),
        ("c1222", "REQ:Partial Read 3", None),
        ("enip", "List Identity", None),
        ("modbus", None, None),
    ],
)
def test_function_classes(protocol: str, function: str | None, expected: tuple[str, str] | None) -> None:
    assert zeek_ics.classify(protocol, function) == expected
