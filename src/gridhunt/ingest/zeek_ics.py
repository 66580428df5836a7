"""ICS protocol records from Zeek logs -> `ics` rows, and the one table saying which functions write or control.

Logs: Zeek's own `modbus.log` and `dnp3.log`, and the CISA ICSNPP plugins' `bacnet.log`, `enip.log`,
`cip.log`, `s7comm.log` and `c1222.log` (TSV or JSON; `zeek.py` reads the file and hands each record
here as {zeek field: typed value}, `ts` already in epoch microseconds and ports as integers).

One row per request / response record: the connection's originator is `src_ip` (the master / client)
and its responder `dst_ip` (the outstation / server) even on a response row, so a master-outstation
pair is one (src_ip, dst_ip) whatever way the packet went; `direction` says which way it went
('request', 'response', or NULL when one record covers both, as Zeek's dnp3.log and pre-7 modbus.log do).
`is_write` / `is_control` classify the function (FUNCTION_CLASSES) on request and response rows alike;
analytics count commands as rows whose direction is not 'response'.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

WRITE, CONTROL = "write", "control"

# Zeek log path -> protocol
LOG_PROTOCOLS = {
    "modbus": "modbus",
    "dnp3": "dnp3",
    "bacnet": "bacnet",
    "enip": "enip",
    "cip": "cip",
    "s7comm": "s7comm",
    "c1222": "c1222",
}

# protocol -> {function name as the log spells it: (write | control, ATT&CK for ICS technique)}.
# Functions not listed (reads, polls, discovery, session set-up) are neither. "control" = operate an
# output, restart, stop / start / run mode, program or firmware download, file transfer; "write" = changes a value,
# an output, a setpoint or the device's configuration.
FUNCTION_CLASSES: dict[str, dict[str, tuple[str, str]]] = {
    # MODBUS Application Protocol Specification V1.1b3 §6 (public codes); the vendor codes by the names of
    # Zeek's base/protocols/modbus/consts.zeek. An exception response ('<NAME>_EXCEPTION') is its function.
    "modbus": {
        "WRITE_SINGLE_COIL": (WRITE, "T0855"),  # FC 5: switches an output
        "WRITE_SINGLE_REGISTER": (WRITE, "T0836"),  # FC 6
        "WRITE_MULTIPLE_COILS": (WRITE, "T0855"),  # FC 15
        "WRITE_MULTIPLE_REGISTERS": (WRITE, "T0836"),  # FC 16
        "WRITE_FILE_RECORD": (WRITE, "T0836"),  # FC 21
        "MASK_WRITE_REGISTER": (WRITE, "T0836"),  # FC 22
        "READ_WRITE_MULTIPLE_REGISTERS": (WRITE, "T0836"),  # FC 23: writes first, then reads
        # FC 8: sub-functions 01 (restart communications) and 04 (force listen-only mode) take a device
        # off the bus; Zeek does not log the sub-function, so every DIAGNOSTICS counts
        "DIAGNOSTICS": (CONTROL, "T0816"),
        "PROGRAM_484": (CONTROL, "T0843"),  # FC 9
        "PROGRAM_584_984": (CONTROL, "T0843"),  # FC 13
        "PROGRAM_884_U84": (CONTROL, "T0843"),  # FC 18
        "RESET_COMM_LINK_884_U84": (CONTROL, "T0816"),  # FC 19
        "PROGRAM_CONCEPT": (CONTROL, "T0843"),  # FC 40 (Schneider Concept)
        "PROGRAM_UNITY": (CONTROL, "T0843"),  # FC 90 (Schneider UMAS: run / stop, download)
        "FIRMWARE_REPLACEMENT": (CONTROL, "T0857"),  # FC 125
        "PROGRAM_584_984_2": (CONTROL, "T0843"),  # FC 126
    },
    # IEEE 1815-2012 (DNP3) table 4-1, names as Zeek's base/protocols/dnp3/consts.zeek logs them
    "dnp3": {
        "WRITE": (WRITE, "T0836"),  # FC 2
        # FC 3-6 operate outputs (trip / close a breaker, start a pump): control, so change windows and
        # business hours judge them (ics.control_command), as they judge restarts
        "SELECT": (CONTROL, "T0855"),  # FC 3: select-before-operate
        "OPERATE": (CONTROL, "T0855"),  # FC 4
        "DIRECT_OPERATE": (CONTROL, "T0855"),  # FC 5
        "DIRECT_OPERATE_NR": (CONTROL, "T0855"),  # FC 6
        "FREEZE_CLEAR": (WRITE, "T0836"),  # FC 9: zeroes counters (metering values)
        "FREEZE_CLEAR_NR": (WRITE, "T0836"),  # FC 10
        "ENABLE_UNSOLICITED": (WRITE, "T0836"),  # FC 20
        "DISABLE_UNSOLICITED": (WRITE, "T0878"),  # FC 21: the outstation stops reporting events
        "ASSIGN_CLASS": (WRITE, "T0836"),  # FC 22
        "COLD_RESTART": (CONTROL, "T0816"),  # FC 13
        "WARM_RESTART": (CONTROL, "T0816"),  # FC 14
        "INITIALIZE_DATA": (CONTROL, "T0816"),  # FC 15
        "INITIALIZE_APPL": (CONTROL, "T0858"),  # FC 16
        "START_APPL": (CONTROL, "T0858"),  # FC 17
        "STOP_APPL": (CONTROL, "T0858"),  # FC 18
        "SAVE_CONFIG": (CONTROL, "T0836"),  # FC 19
        "OPEN_FILE": (CONTROL, "T0843"),  # FC 25-30: file transfer (configuration, firmware)
        "CLOSE_FILE": (CONTROL, "T0843"),
        "DELETE_FILE": (CONTROL, "T0843"),
        "GET_FILE_INFO": (CONTROL, "T0843"),
        "AUTHENTICATE_FILE": (CONTROL, "T0843"),
        "ABORT_FILE": (CONTROL, "T0843"),
        "ACTIVATE_CONFIG": (CONTROL, "T0843"),  # FC 31
    },
    # ANSI/ASHRAE 135 (BACnet) clauses 14-16, service names as ICSNPP-BACnet's consts.zeek logs them
    "bacnet": {
        "add_list_element": (WRITE, "T0836"),
        "remove_list_element": (WRITE, "T0836"),
        "create_object": (WRITE, "T0836"),
        "delete_object": (WRITE, "T0809"),
        "write_property": (WRITE, "T0836"),
        "write_property_multiple": (WRITE, "T0836"),
        "life_safety_operation": (WRITE, "T0855"),  # silences / resets life-safety alarms
        "atomic_write_file": (CONTROL, "T0843"),  # file (program, firmware) upload to the device
        "device_communication_control": (CONTROL, "T0814"),  # can disable the device's communication
        "reinitialized_device": (CONTROL, "T0816"),  # ICSNPP's spelling of ReinitializeDevice
        "reinitialize_device": (CONTROL, "T0816"),
    },
    # ODVA CIP Vol. 1 appendix A (common services) and the Logix data-table services, names as
    # ICSNPP-ENIP's consts.zeek logs them
    "cip": {
        "Set Attributes All": (WRITE, "T0836"),  # 0x02
        "Set Attribute List": (WRITE, "T0836"),  # 0x04
        "Create": (WRITE, "T0836"),  # 0x08
        "Delete": (WRITE, "T0809"),  # 0x09
        "Apply Attributes": (WRITE, "T0836"),  # 0x0D
        "Set Attributes Single": (WRITE, "T0836"),  # 0x10
        "Restore": (WRITE, "T0836"),  # 0x15
        "Save": (WRITE, "T0836"),  # 0x16
        "Set Member": (WRITE, "T0836"),  # 0x19
        "Insert Member": (WRITE, "T0836"),  # 0x1A
        "Remove Member": (WRITE, "T0836"),  # 0x1B
        "Write Data": (WRITE, "T0836"),  # 0x4D: Logix tag write
        "Read Write Modify Data": (WRITE, "T0836"),  # 0x4E
        "Write Data Fragmented": (WRITE, "T0836"),  # 0x53
        "Reset": (CONTROL, "T0816"),  # 0x05: device reset
        "Start": (CONTROL, "T0858"),  # 0x06
        "Stop": (CONTROL, "T0858"),  # 0x07
    },
    # S7comm job functions and user-data sub-functions, names as ICSNPP-S7COMM's consts.zeek (after
    # Wireshark's s7comm dissector) logs them; user-data "Request: " / "Response: " prefixes are dropped
    "s7comm": {
        "Write Variable": (WRITE, "T0836"),  # job 0x05
        "Request Download": (CONTROL, "T0843"),  # job 0x1a-0x1c: block (program) download
        "Download Block": (CONTROL, "T0843"),
        "Download Ended": (CONTROL, "T0843"),
        "PLC Control": (CONTROL, "T0858"),  # job 0x28: PI service (start, copy RAM to ROM, delete block …)
        "PLC Stop": (CONTROL, "T0858"),  # job 0x29: CPU to STOP
        "Set Clock": (WRITE, "T0836"),  # time functions
        "Set Clock (2)": (WRITE, "T0836"),
        "Modify Variable": (WRITE, "T0836"),  # programmer controls
        "Force": (WRITE, "T0855"),
        "Memory Reset": (CONTROL, "T0809"),
    },
    # ANSI C12.22 / IEEE 1703 EPSEM services, as ICSNPP-C12.22 logs them (request codes 'REQ:...')
    "c1222": {
        "REQ:Full Write": (WRITE, "T0836"),
        "REQ:Partial Write Offset": (WRITE, "T0836"),
        **{f"REQ:Partial Write {n}": (WRITE, "T0836") for n in range(1, 10)},
    },
}

_NON_WORD = re.compile(r"[^0-9A-Za-z:]+")


def _key(name: str) -> str:
    """'Set Attributes Single' / 'set_attributes_single' / 'REQ:Partial Write 1' -> one spelling."""
    return _NON_WORD.sub("_", name.strip()).strip("_").upper()


_CLASSES = {proto: {_key(k): v for k, v in table.items()} for proto, table in FUNCTION_CLASSES.items()}


def classify(protocol: str, function: str | None) -> tuple[str, str] | None:
    """(write | control, technique) of a function, or None for everything else."""
    if not function:
        return None
    table = _CLASSES.get(protocol, {})
    key = _key(function)
    if protocol == "modbus" and key.endswith("_EXCEPTION"):
        key = key[: -len("_EXCEPTION")]
    return table.get(key)


# DNP3 internal indications (IEEE 1815-2012 §4.2.2.7.2); Zeek logs (IIN1 << 8) | IIN2
_IIN_BITS = (
    (0x8000, "DEVICE_RESTART"),
    (0x4000, "DEVICE_TROUBLE"),
    (0x2000, "LOCAL_CONTROL"),
    (0x1000, "NEED_TIME"),
    (0x0800, "CLASS_3_EVENTS"),
    (0x0400, "CLASS_2_EVENTS"),
    (0x0200, "CLASS_1_EVENTS"),
    (0x0100, "BROADCAST"),
    (0x0020, "CONFIG_CORRUPT"),
    (0x0010, "ALREADY_EXECUTING"),
    (0x0008, "EVENT_BUFFER_OVERFLOW"),
    (0x0004, "PARAMETER_ERROR"),
    (0x0002, "OBJECT_UNKNOWN"),
    (0x0001, "NO_FUNC_CODE_SUPPORT"),
)
_BACNET_REQUESTS = {"CONFIRMED_REQUEST", "UNCONFIRMED_REQUEST"}
_BACNET_RESPONSES = {"SIMPLE_ACK", "COMPLEX_ACK", "SEGMENT_ACK", "ERROR_PDU", "REJECT_PDU", "ABORT_PDU"}
_CONN_FIELDS = {"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"}
_S7_METHOD = re.compile(r"^(request|response|push):\s*", re.IGNORECASE)


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    if isinstance(v, bool):
        return "T" if v else "F"
    return str(v)


def _by_orig(rec: dict[str, Any]) -> str | None:
    """Direction from ICSNPP's is_orig (T: the originator sent it)."""
    orig = rec.get("is_orig")
    if isinstance(orig, bool):
        return "request" if orig else "response"
    return None


def _iin_status(iin: Any) -> str | None:
    if iin is None or isinstance(iin, bool):
        return None
    try:
        value = int(iin)
    except (TypeError, ValueError):
        return str(iin)
    return " ".join(name for bit, name in _IIN_BITS if value & bit)


def _modbus(rec: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    pdu = _text(rec.get("pdu_type"))
    direction = {"REQ": "request", "RESP": "response"}.get((pdu or "").upper())
    return _text(rec.get("func")), direction, _text(rec.get("unit")), _text(rec.get("exception"))


def _dnp3(rec: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    request, reply = _text(rec.get("fc_request")), _text(rec.get("fc_reply"))
    # one record holds a request and its reply; a reply alone (UNSOLICITED_RESPONSE) is a response
    direction = "request" if request else ("response" if reply else None)
    return request or reply, direction, None, _iin_status(rec.get("iin"))


def _bacnet(rec: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    pdu = (_text(rec.get("pdu_type")) or "").upper()
    if pdu in _BACNET_REQUESTS:
        direction: str | None = "request"
    elif pdu in _BACNET_RESPONSES:
        direction = "response"
    else:
        direction = _by_orig(rec)
    return _text(rec.get("pdu_service")), direction, None, _text(rec.get("result_code"))


def _enip(rec: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    return _text(rec.get("enip_command")), _by_orig(rec), None, _text(rec.get("enip_status"))


def _cip(rec: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    direction = (_text(rec.get("direction")) or "").lower() or None
    if direction not in ("request", "response"):
        direction = _by_orig(rec)
    cls = _text(rec.get("class_name")) or _text(rec.get("class_id"))
    path = [cls] if cls else []
    if rec.get("instance_id") is not None:
        path.append(f"instance {_text(rec['instance_id'])}")
    if rec.get("attribute_id") is not None:
        path.append(f"attribute {_text(rec['attribute_id'])}")
    status = _text(rec.get("cip_status"))
    extended = _text(rec.get("cip_extended_status"))
    if status and extended:
        status = f"{status}: {extended}"
    return _text(rec.get("cip_service")), direction, ", ".join(path) or None, status


def _s7comm(rec: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    # a user-data group alone ('Request: CPU Functions') says little: its sub-function goes beside it
    group, sub = _text(rec.get("function_name")), _text(rec.get("subfunction_name"))
    shown = f"{group} ({sub})" if group and sub else (group or sub)
    rosctr = (_text(rec.get("rosctr_name")) or "").lower()
    name = (_text(rec.get("function_name")) or "").lower()
    if rosctr == "job-request" or (rosctr == "user-data" and name.startswith("request")):
        direction: str | None = "request"
    elif rosctr in ("ack", "ack-data") or (rosctr == "user-data" and name.startswith("response")):
        direction = "response"
    else:
        direction = _by_orig(rec)
    error_class, error_code = _text(rec.get("error_class")), _text(rec.get("error_code"))
    status = error_class
    if error_class and error_code and error_code not in ("0x00", "0x0000"):
        status = f"{error_class} ({error_code})"
    return shown, direction, None, status


def _c1222(rec: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    services = rec.get("services")
    names = [str(s) for s in services] if isinstance(services, list) else ([str(services)] if services else [])
    if names and all(n.startswith("REQ:") for n in names):
        direction: str | None = "request"
    elif names and all(n.startswith("RESP:") for n in names):
        direction = "response"
    else:
        direction = None
    status = next((n for n in names if n.startswith("RESP:")), None)
    return ",".join(names) or None, direction, _text(rec.get("called_ap_title")), status


_MAPPERS = {
    "modbus": _modbus,
    "dnp3": _dnp3,
    "bacnet": _bacnet,
    "enip": _enip,
    "cip": _cip,
    "s7comm": _s7comm,
    "c1222": _c1222,
}


def _classes(protocol: str, rec: dict[str, Any], function: str | None) -> tuple[bool, bool]:
    if protocol == "c1222":
        found = [classify(protocol, s) for s in (function or "").split(",")]
    elif protocol == "s7comm":
        # a user-data sub-function ('Set Clock') says more than its group ('Request: Time Functions')
        name = _S7_METHOD.sub("", _text(rec.get("function_name")) or "")
        found = [classify(protocol, _text(rec.get("subfunction_name"))) or classify(protocol, name)]
    else:
        found = [classify(protocol, function)]
    kinds = {c[0] for c in found if c}
    return WRITE in kinds, CONTROL in kinds


def build(log_type: str, rec: dict[str, Any]) -> dict[str, Any]:
    """The `ics` row of one record (source_ref left to the caller)."""
    protocol = LOG_PROTOCOLS[log_type]
    function, direction, unit, status = _MAPPERS[protocol](rec)
    is_write, is_control = _classes(protocol, rec, function)
    rest = {k: v for k, v in rec.items() if k not in _CONN_FIELDS and not k.startswith("_") and v is not None}
    return {
        "ts": rec.get("ts"),
        "uid": _text(rec.get("uid")),
        "src_ip": _text(rec.get("id.orig_h")),
        "src_port": rec.get("id.orig_p"),
        "dst_ip": _text(rec.get("id.resp_h")),
        "dst_port": rec.get("id.resp_p"),
        "protocol": protocol,
        "function": function,
        "direction": direction,
        "is_write": is_write,
        "is_control": is_control,
        "unit_or_address": unit,
        "status": status,
        "details": orjson.dumps(rest, option=orjson.OPT_SORT_KEYS).decode(),
    }


def json_log_type(obj: dict[str, Any]) -> str | None:
    """The ICS log type of a JSON record with no `_path` and no telling file name, by its own keys."""
    if "fc_request" in obj or "fc_reply" in obj:
        return "dnp3"
    # ICSNPP's modbus_detailed / mask-write logs also carry `func`, with these beside it
    if "func" in obj and not obj.keys() & {"is_orig", "address", "quantity", "request_values", "response_values"}:
        return "modbus"
    if "bvlc_function" in obj:
        return "bacnet"
    if "enip_command" in obj:
        return "enip"
    if "cip_service" in obj:
        return "cip"
    if "rosctr_name" in obj:
        return "s7comm"
    if "elements" in obj and "calling_ap_title" in obj:
        return "c1222"
    return None


# TSV value kinds of the ICS logs' fields when a file has no `#types` line (LogAscii tsv=T)
TSV_KINDS_BY_NAME = {
    "ts": "time",
    "id.orig_p": "port",
    "id.resp_p": "port",
    "source_p": "port",
    "destination_p": "port",
    "tid": "count",
    "unit": "count",
    "iin": "count",
    "invoke_id": "count",
    "cip_sequence_count": "count",
    "length": "count",
    "rosctr_code": "count",
    "pdu_reference": "count",
    "is_orig": "bool",
    "is_encrypted_epsem": "bool",
    "elements": "vector",
    "services": "vector",
    "calling_ae_qualifier": "vector",
}


def tsv_kind(zeek_type: str | None, name: str) -> str:
    """Our value kind for a TSV column: from its `#types` entry, else from its name."""
    if not zeek_type:
        return TSV_KINDS_BY_NAME.get(name, "str")
    t = zeek_type.lower()
    if t.startswith(("set[", "vector[", "table[")):
        return "vector"
    return {
        "time": "time",
        "port": "port",
        "count": "count",
        "int": "int",
        "double": "float",
        "interval": "float",
        "bool": "bool",
    }.get(t, "str")
