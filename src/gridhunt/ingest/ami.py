"""AMI head-end / DMS / MDM audit records (docs/FORMATS.md), JSON lines or CSV -> ami_audit.

Vocabularies (system, action, target_type, result) are checked: a value outside them makes the
record bad (counted, with the reason), because a detection keyed on `action = 'firmware_push'`
silently misses a misspelt one. Case is forgiven (`enddevicecontrol:Disconnect`), spelling is not.
login / login_failed records also go to `auth` (source 'ami', dst_host = the system) so one auth
table covers Windows, VPN and head-end logons.
"""

from __future__ import annotations

import csv
import ipaddress
from pathlib import Path
from typing import Any

import orjson

from gridhunt.ingest._common import (
    BadValue,
    Sink,
    head_text,
    iter_csv_records,
    iter_json_objects,
    to_int,
    to_micros,
    to_str,
)
from gridhunt.ingest.base import Advance, FileResult, Tally

FORMAT = "ami"
FORMATS = ("ami_jsonl", "ami_csv")

COLUMNS = (
    "ts",
    "system",
    "user",
    "src_ip",
    "action",
    "target_type",
    "target_id",
    "target_count",
    "params",
    "result",
)
SYSTEMS = ("headend", "dms", "mdm")
ACTIONS = (
    "login",
    "logout",
    "login_failed",
    "create_user",
    "grant_role",
    "config_change",
    "firmware_push",
    "EndDeviceControl:disconnect",
    "EndDeviceControl:connect",
    "EndDeviceControl:load_limit",
    "EndDeviceControl:ping",
    "bulk_job",
)
TARGET_TYPES = ("meter", "collector", "feeder", "switch", "user", "config")
RESULTS = ("ok", "failed", "rejected")

_REQUIRED = ("ts", "system", "action", "result")
# lower-cased spelling -> canonical spelling
_VOCAB = {
    "system": {v.lower(): v for v in SYSTEMS},
    "action": {v.lower(): v for v in ACTIONS},
    "target_type": {v.lower(): v for v in TARGET_TYPES},
    "result": {v.lower(): v for v in RESULTS},
}
# what a sniffed header / first record must have to be ours and not, say, a firewall CSV
_SIGNATURE = frozenset({"ts", "system", "action", "target_type", "result"})


def sniff(head: bytes, path: Path) -> str | None:
    text = head_text(head)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if first.startswith("{"):
        try:
            obj = orjson.loads(first)
        except orjson.JSONDecodeError:
            return None
        return "ami_jsonl" if isinstance(obj, dict) and obj.keys() >= _SIGNATURE else None
    columns = {c.strip().strip('"').lower() for c in next(csv.reader([first]), [])}
    return "ami_csv" if columns >= _SIGNATURE else None


def _vocab(name: str, value: Any, required: bool) -> str | None:
    s = to_str(value)
    if s is None:
        if required:
            raise BadValue(f"{name}: missing")
        return None
    canon = _VOCAB[name].get(s.lower())
    if canon is None:
        raise BadValue(f"{name}: unknown value {s!r}")
    return canon


def _params(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):  # CSV (and some JSON producers): the object as JSON text
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise BadValue(f"params: not JSON: {value[:80]!r}") from None
    if not isinstance(value, dict):
        raise BadValue("params: not a JSON object")
    return orjson.dumps(value).decode()


def _record(r: dict[str, Any], source_file: str, ref: str) -> dict[str, Any]:
    try:
        ts = to_micros(r.get("ts"))
    except BadValue as exc:
        raise BadValue(f"ts: {exc}") from None
    if ts is None:
        raise BadValue("ts: missing")
    src_ip = to_str(r.get("src_ip"))
    if src_ip is not None:
        try:
            src_ip = str(ipaddress.ip_address(src_ip))
        except ValueError:
            raise BadValue(f"src_ip: not an IP address: {src_ip!r}") from None
    try:
        count = to_int(r.get("target_count"), 0)
    except BadValue as exc:
        raise BadValue(f"target_count: {exc}") from None
    return {
        "ts": ts,
        "system": _vocab("system", r.get("system"), True),
        "user": to_str(r.get("user")),
        "src_ip": src_ip,
        "action": _vocab("action", r.get("action"), True),
        "target_type": _vocab("target_type", r.get("target_type"), False),  # logins have none
        "target_id": to_str(r.get("target_id")),
        "target_count": count,
        "params": _params(r.get("params")),
        "result": _vocab("result", r.get("result"), True),
        "source_file": source_file,
        "source_ref": ref,
    }


class _Writer:
    def __init__(self, case: Any) -> None:
        self.audit = Sink(case, "ami_audit")
        self.auth = Sink(case, "auth")

    def add(self, row: dict[str, Any]) -> None:
        self.audit.add(row)
        if row["action"] in ("login", "login_failed"):
            failed = row["action"] == "login_failed" or row["result"] != "ok"
            reason = None
            if failed and row["params"]:
                reason = orjson.loads(row["params"]).get("reason")
            self.auth.add(
                {
                    "ts": row["ts"],
                    "user": row["user"],
                    "src_ip": row["src_ip"],
                    "dst_host": row["system"],
                    "outcome": "failure" if failed else "success",
                    "failure_reason": str(reason) if reason is not None else None,
                    "source": "ami",
                    "source_file": row["source_file"],
                    "source_ref": row["source_ref"],
                }
            )

    def close(self) -> None:
        self.audit.flush()
        self.auth.flush()


def ingest(case: Any, path: Path, fmt: str, progress: Advance | None = None) -> FileResult:
    path = Path(path).resolve()
    tally = Tally(path, fmt)
    writer = _Writer(case)
    if fmt == "ami_csv":
        _read_csv(path, tally, writer, progress)
    else:
        _read_jsonl(path, tally, writer, progress)
    writer.close()
    return tally.result()


def _read_jsonl(path: Path, tally: Tally, writer: _Writer, progress: Advance | None) -> None:
    src = str(path)
    for n, obj in iter_json_objects(path, tally, progress):
        try:
            writer.add(_record(obj, src, f"line {n}"))
        except BadValue as exc:
            tally.bad_record(f"line {n}", str(exc))
            continue
        tally.ok += 1


def _read_csv(path: Path, tally: Tally, writer: _Writer, progress: Advance | None) -> None:
    src = str(path)
    for line, rec in iter_csv_records(path, tally, progress, _REQUIRED, COLUMNS):
        try:
            writer.add(_record(rec, src, f"line {line}"))
        except BadValue as exc:
            tally.bad_record(f"line {line}", str(exc))
            continue
        tally.ok += 1
