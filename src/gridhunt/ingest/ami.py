"""AMI head-end / DMS / MDM audit records (docs/FORMATS.md), JSON lines or CSV -> ami_audit.

Vocabularies (system, action, target_type, result) are checked: a value outside them makes the
record bad (counted, with the reason), because a detection keyed on `action = 'firmware_push'`
silently misses a misspelt one. Case is forgiven (`enddevicecontrol:Disconnect`), spelling is not.
login / login_failed records also go to `auth` (source 'ami', dst_host = the system) so one auth
table covers Windows, VPN and head-end logons.

A vendor's own CSV export is read through a header-mapping YAML beside it (`<file name>.mapping.yaml`,
`<stem>.mapping.yaml` or `ami-mapping.yaml`, first found wins): `{their_column: our_column}`, as for
firewall CSVs, plus an optional `values:` section giving their words for our vocabularies
(`values: {action: {RemoteDisconnect: "EndDeviceControl:disconnect"}, result: {Success: ok}}`).
"""

from __future__ import annotations

import csv
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

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
FORMATS = ("ami_jsonl", "ami_csv", "ami_mapping")

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
MAPPING_NAMES = ("{name}.mapping.yaml", "{stem}.mapping.yaml", "ami-mapping.yaml")
# a mapping naming one of these is ours, not a firewall / VPN one (those share ts, user, src_ip, action)
_AMI_ONLY = frozenset({"system", "target_type", "target_id", "target_count", "params", "result"})


@dataclass
class Mapping:
    """A vendor export's header mapping: their column -> ours, and their words for our vocabularies."""

    columns: dict[str, str] = field(default_factory=dict)  # lower-cased their column -> our column
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # our column -> lower-cased theirs -> ours


def _find_mapping(path: Path) -> Path | None:
    for pattern in MAPPING_NAMES:
        cand = path.with_name(pattern.format(name=path.name, stem=path.stem))
        if cand != path and cand.is_file():
            return cand
    return None


def load_mapping(mapping_file: Path, tally: Tally | None = None, text: str | None = None) -> Mapping:
    """Read a mapping YAML (or its `text`); bad entries are reported (when a tally is given) and dropped."""

    def bad(where: str, why: str) -> None:
        if tally is not None:
            tally.bad_record(f"{mapping_file.name}: {where}" if where else mapping_file.name, why)

    try:
        data = yaml.safe_load(text if text is not None else Path(mapping_file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        bad("", f"unreadable header mapping: {exc}")
        return Mapping()
    if not isinstance(data, dict):
        bad("", "header mapping must be a {their_column: our_column} map")
        return Mapping()
    out = Mapping()
    for theirs, ours in data.items():
        if theirs == "values":
            continue
        target = str(ours).strip().lower() if ours is not None else ""
        if target not in COLUMNS:
            bad(str(theirs), f"unknown target column {ours!r}")
            continue
        out.columns[str(theirs).strip().lower()] = target
    values = data.get("values") or {}
    if not isinstance(values, dict):
        bad("values", "expected {our_column: {their_value: our_value}}")
        values = {}
    for column, words in values.items():
        col = str(column).strip().lower()
        if col not in _VOCAB or not isinstance(words, dict):
            bad(f"values.{column}", f"expected one of {', '.join(_VOCAB)} with a {{their_value: our_value}} map")
            continue
        for theirs, ours in words.items():
            canon = _VOCAB[col].get(str(ours).strip().lower()) if ours is not None else None
            if canon is None:
                bad(f"values.{column}.{theirs}", f"unknown {col} {ours!r}")
                continue
            out.values.setdefault(col, {})[str(theirs).strip().lower()] = canon
    return out


def _is_mapping_file(path: Path) -> bool:
    return path.name.endswith(tuple(p.format(name="", stem="") for p in MAPPING_NAMES))


def sniff(head: bytes, path: Path) -> str | None:
    if _is_mapping_file(path):
        mapping = load_mapping(path, text=head_text(head))
        return "ami_mapping" if set(mapping.columns.values()) & _AMI_ONLY else None
    text = head_text(head)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if first.startswith("{"):
        try:
            obj = orjson.loads(first)
        except orjson.JSONDecodeError:
            return None
        return "ami_jsonl" if isinstance(obj, dict) and obj.keys() >= _SIGNATURE else None
    columns = {c.strip().strip('"').lower() for c in next(csv.reader([first]), [])}
    if columns >= _SIGNATURE:
        return "ami_csv"
    mapping_file = _find_mapping(path) if "," in first else None
    if mapping_file is not None:
        rename = load_mapping(mapping_file).columns
        if {rename.get(c, c) for c in columns} >= _SIGNATURE:
            return "ami_csv"
    return None


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
    if fmt == "ami_mapping":
        return tally.result("header mapping for the AMI audit CSV files beside it; read with them")
    writer = _Writer(case)
    if fmt == "ami_csv":
        mapping_file = _find_mapping(path)
        mapping = load_mapping(mapping_file, tally) if mapping_file is not None else Mapping()
        _read_csv(path, tally, writer, progress, mapping)
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


def _read_csv(path: Path, tally: Tally, writer: _Writer, progress: Advance | None, mapping: Mapping) -> None:
    src = str(path)
    for line, rec in iter_csv_records(path, tally, progress, _REQUIRED, COLUMNS, mapping.columns):
        for col, words in mapping.values.items():
            value = (rec.get(col) or "").strip()
            if value:
                rec[col] = words.get(value.lower(), value)
        try:
            writer.add(_record(rec, src, f"line {line}"))
        except BadValue as exc:
            tally.bad_record(f"line {line}", str(exc))
            continue
        tally.ok += 1
