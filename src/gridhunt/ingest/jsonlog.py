"""Windows events exported as JSON: evtx_dump, Winlogbeat / ECS, Splunk.

Every record is validated with orjson and converted in Python to the evtx_dump shape
`{"Event": {"System": {...}, "EventData": {...}}}`; `WinEventWriter` then flattens it exactly as
it flattens binary EVTX records (one implementation for all sources).

Layouts (sniffed from content, see detect.json_layout):
- lines: one JSON object per line (JSONL / NDJSON); source_ref "line N"
- pretty: pretty-printed objects one after another (`evtx_dump -o json`); an object starts at
  a line beginning with "{" and ends at a line "}"; source_ref "object K line N"
- array: one top-level JSON array; source_ref "item K"
A malformed record is counted and reported with its position; the rest of the file is read.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gridhunt.ingest.base import Advance, FileResult, Tally
from gridhunt.ingest.detect import UTF8_BOM, first_object_keys, json_layout
from gridhunt.ingest.winevents import WinEventWriter

FORMAT = "winjson"
FORMATS = ("evtx_json", "winlogbeat", "splunk")

BATCH_RECORDS = 20_000
MAX_ARRAY_BYTES = 512 * 1024 * 1024  # a top-level array is parsed whole; bigger must be JSON lines


class BadRecord(ValueError):
    """A record that is valid JSON but not a Windows event we can map."""


# ---- sniffing ------------------------------------------------------------------------------------

_SPLUNK_HINTS = (b"WinEventLog", b"<Event xmlns", b"<Event>", b'"EventCode"')


def sniff(head: bytes, path: Path) -> str | None:
    if json_layout(head) is None:
        return None
    keys = first_object_keys(head)
    if "Event" in keys:
        return "evtx_json"
    if "winlog" in keys or any(k.startswith("winlog.") for k in keys):
        return "winlogbeat"
    if "_source" in keys and b'"winlog' in head:
        return "winlogbeat"  # Elasticsearch search hits
    if ("result" in keys or "_raw" in keys or "EventCode" in keys) and any(h in head for h in _SPLUNK_HINTS):
        return "splunk"
    return None


# ---- conversion to the evtx_dump shape -----------------------------------------------------------


def to_event(obj: Any) -> dict[str, Any]:
    """One JSON record of any supported export -> {"Event": {...}} (raises BadRecord)."""
    if not isinstance(obj, dict):
        raise BadRecord(f"not a JSON object but {type(obj).__name__}")
    event = obj.get("Event")
    if isinstance(event, dict):
        return {"Event": event}
    if "_source" in obj and isinstance(obj["_source"], dict):
        obj = obj["_source"]
    if any(k.startswith("winlog.") for k in obj):
        obj = _unflatten(obj)
    if isinstance(obj.get("winlog"), dict):
        return from_winlogbeat(obj)
    result = obj.get("result")
    if isinstance(result, dict):
        return from_splunk(result)
    if "_raw" in obj or "EventCode" in obj:
        return from_splunk(obj)
    raise BadRecord("not a Windows event (no Event, winlog or Splunk result)")


def _unflatten(obj: dict[str, Any]) -> dict[str, Any]:
    """{"winlog.event_id": 1} -> {"winlog": {"event_id": 1}} (flattened ECS exports)."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = node[p] = {}
            node = nxt
        node[parts[-1]] = value
    return out


_LEVELS = {"critical": 1, "error": 2, "warning": 3, "information": 4, "info": 4, "verbose": 5}
_FRACTION = re.compile(r"(\.\d{6})\d+")


def norm_ts(value: Any) -> str | None:
    """ISO 8601 UTC text ('...Z') from ISO text (any offset, up to 9 fraction digits) or epoch
    seconds; naive times are UTC (FORMATS.md). Unparseable text is kept for the raw column."""
    if value is None or value == "":
        return None
    if isinstance(value, list):
        value = value[0] if value else None
        return norm_ts(value)
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            dt = datetime.fromtimestamp(value, UTC)
        else:
            s = str(value).strip()
            if s.replace(".", "", 1).isdigit():
                dt = datetime.fromtimestamp(float(s), UTC)
            else:
                dt = datetime.fromisoformat(_FRACTION.sub(r"\1", s))
                dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return str(value)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _int_or_text(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def from_winlogbeat(o: dict[str, Any]) -> dict[str, Any]:
    w: dict[str, Any] = o["winlog"]
    ev = o.get("event") if isinstance(o.get("event"), dict) else {}
    host = o.get("host") if isinstance(o.get("host"), dict) else {}
    log = o.get("log") if isinstance(o.get("log"), dict) else {}
    system: dict[str, Any] = {}
    prov = {
        k: v
        for k, v in (("Name", w.get("provider_name") or ev.get("provider")), ("Guid", w.get("provider_guid")))
        if v
    }
    if prov:
        system["Provider"] = {"#attributes": prov}
    event_id = w.get("event_id", ev.get("code"))
    if event_id is None:
        raise BadRecord("winlog record without winlog.event_id")
    system["EventID"] = _int_or_text(event_id)
    if w.get("version") is not None:
        system["Version"] = w["version"]
    level = _LEVELS.get(str(log.get("level", "")).lower())
    if level is not None:
        system["Level"] = level
    if w.get("keywords"):
        kw = w["keywords"]
        system["Keywords"] = ", ".join(map(str, kw)) if isinstance(kw, list) else str(kw)
    system["TimeCreated"] = {"#attributes": {"SystemTime": norm_ts(o.get("@timestamp") or ev.get("created"))}}
    if w.get("record_id") is not None:
        system["EventRecordID"] = _int_or_text(w["record_id"])
    proc = w.get("process") if isinstance(w.get("process"), dict) else {}
    thread = proc.get("thread") if isinstance(proc.get("thread"), dict) else {}
    if proc:
        system["Execution"] = {"#attributes": {"ProcessID": proc.get("pid"), "ThreadID": thread.get("id")}}
    system["Channel"] = w.get("channel")
    system["Computer"] = w.get("computer_name") or host.get("hostname") or host.get("name")
    user = w.get("user") if isinstance(w.get("user"), dict) else {}
    system["Security"] = {"#attributes": {"UserID": user["identifier"]}} if user.get("identifier") else None
    event: dict[str, Any] = {"System": system}
    if w.get("event_data") is not None:
        event["EventData"] = w["event_data"]
    user_data = w.get("user_data")
    if isinstance(user_data, dict) and user_data:
        user_data = dict(user_data)
        name = user_data.pop("xml_name", None) or "UserData"
        event["UserData"] = {str(name): user_data}
    return {"Event": event}


# Splunk fields that describe the search/index, not the event.
_SPLUNK_META = {
    "host",
    "source",
    "sourcetype",
    "index",
    "splunk_server",
    "splunk_server_group",
    "linecount",
    "punct",
    "eventtype",
    "tag",
    "timestartpos",
    "timeendpos",
    "EventCode",
    "EventType",
    "LogName",
    "ComputerName",
    "RecordNumber",
    "SourceName",
    "Type",
    "TaskCategory",
    "Keywords",
    "OpCode",
    "Sid",
    "SidType",
    "Computer",
    "Channel",
    "EventID",
    "EventRecordID",
    "Provider",
}
_RAW_KV = re.compile(r"^(\w+)=(.*)$", re.MULTILINE)


def from_splunk(res: dict[str, Any]) -> dict[str, Any]:
    raw = _first(res.get("_raw"))
    if isinstance(raw, str) and raw.lstrip().startswith("<Event"):
        try:
            return xml_to_event(raw)
        except ET.ParseError as exc:
            raise BadRecord(f"_raw is not well-formed event XML: {exc}") from None
    # Flat fields (Splunk-extracted), completed from a classic 'Key=Value' _raw if present.
    fields = dict(res)
    if isinstance(raw, str):
        for k, v in _RAW_KV.findall(raw):
            fields.setdefault(k, v.strip())
    event_id = _first(fields.get("EventCode", fields.get("EventID")))
    if event_id is None:
        raise BadRecord("Splunk result without EventCode or event XML in _raw")
    system: dict[str, Any] = {}
    provider = _first(fields.get("SourceName") or fields.get("Provider"))
    if provider:
        system["Provider"] = {"#attributes": {"Name": provider}}
    system["EventID"] = _int_or_text(event_id)
    level = _LEVELS.get(str(_first(fields.get("Type", ""))).lower())
    if level is not None:
        system["Level"] = level
    if fields.get("Keywords"):
        system["Keywords"] = _first(fields["Keywords"])
    system["TimeCreated"] = {"#attributes": {"SystemTime": norm_ts(fields.get("_time"))}}
    rec = _first(fields.get("RecordNumber", fields.get("EventRecordID")))
    if rec is not None:
        system["EventRecordID"] = _int_or_text(rec)
    system["Channel"] = _first(fields.get("LogName") or fields.get("Channel"))
    system["Computer"] = _first(fields.get("ComputerName") or fields.get("Computer") or fields.get("host"))
    sid = _first(fields.get("Sid"))
    system["Security"] = {"#attributes": {"UserID": sid}} if sid else None
    data = {
        k: v
        for k, v in res.items()
        if not k.startswith("_") and k not in _SPLUNK_META and not k.startswith(("date_", "tag::"))
    }
    return {"Event": {"System": system, "EventData": data or None}}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_INT_SYSTEM = {"EventID", "Version", "Level", "Task", "Opcode", "EventRecordID"}
_INT_ATTRS = {"ProcessID", "ThreadID", "Qualifiers"}


def _attrs(el: ET.Element) -> dict[str, Any]:
    return {_local(k): (_int_or_text(v) if _local(k) in _INT_ATTRS else v) for k, v in el.attrib.items()}


def _element(el: ET.Element) -> Any:
    """Generic element -> evtx_dump JSON: attributes under #attributes, children by name."""
    children = list(el)
    attrs = _attrs(el)
    text = el.text.strip() if el.text and el.text.strip() else None
    if not children:
        if attrs:
            return {"#attributes": attrs, "#text": text} if text is not None else {"#attributes": attrs}
        return text
    out: dict[str, Any] = {"#attributes": attrs} if attrs else {}
    for c in children:
        name = _local(c.tag)
        value = _element(c)
        if name in out:  # repeated element: a list, as evtx_dump does
            prev = out[name]
            out[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[name] = value
    return out


def xml_to_event(xml: str) -> dict[str, Any]:
    """Windows event XML (as in Splunk XmlWinEventLog `_raw`) -> evtx_dump JSON shape."""
    root = ET.fromstring(xml)
    event: dict[str, Any] = {}
    for part in root:
        name = _local(part.tag)
        if name == "System":
            system: dict[str, Any] = {}
            for c in part:
                key = _local(c.tag)
                value = _element(c)
                if key in _INT_SYSTEM:
                    value = _int_or_text(value)
                if key == "EventID" and isinstance(value, dict):
                    value["#text"] = _int_or_text(value.get("#text"))
                if key == "TimeCreated" and isinstance(value, dict):
                    value["#attributes"]["SystemTime"] = norm_ts(value["#attributes"].get("SystemTime"))
                system[key] = value
            event["System"] = system
        elif name == "EventData":
            event["EventData"] = _event_data(part)
        elif name == "UserData":
            event["UserData"] = {_local(c.tag): _element(c) for c in part}
    if "System" not in event:
        raise BadRecord("event XML without <System>")
    return {"Event": event}


def _event_data(el: ET.Element) -> Any:
    named: dict[str, Any] = {}
    unnamed: list[Any] = []
    for d in el:
        tag = _local(d.tag)
        name = d.get("Name")
        if tag == "Data" and name is None:
            unnamed.append(d.text)
        else:
            named[name if tag == "Data" and name else tag] = d.text
    if unnamed:
        named["Data"] = {"#text": unnamed if len(unnamed) > 1 else unnamed[0]}
    if not named:
        return el.text.strip() if el.text and el.text.strip() else None
    return named


# ---- reading -------------------------------------------------------------------------------------

_Item = tuple[str, Any]  # (source_ref, parsed JSON) or (source_ref, BadRecord)


def _lines(f: Any) -> Iterator[tuple[int, bytes]]:
    for n, line in enumerate(f, 1):
        if n == 1 and line.startswith(UTF8_BOM):
            line = line[len(UTF8_BOM) :]
        yield n, line


def _parse(text: bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return BadRecord(f"malformed JSON: {exc}")


def _read_lines(f: Any) -> Iterator[_Item]:
    for n, line in _lines(f):
        if line.strip():
            yield f"line {n}", _parse(line)


def _read_pretty(f: Any) -> Iterator[_Item]:
    buf: list[bytes] = []
    start = 0
    k = 0
    for n, line in _lines(f):
        if not buf:
            if not line.strip():
                continue
            if not line.startswith(b"{"):
                k += 1
                yield f"object {k} line {n}", BadRecord("text outside a JSON object")
                continue
            stripped = line.strip().rstrip(b",")
            if stripped != b"{" and stripped.endswith(b"}"):
                k += 1  # a compact one-line object among pretty ones
                yield f"object {k} line {n}", _parse(stripped)
                continue
            start = n
        buf.append(line)
        if line.rstrip().rstrip(b",") == b"}":
            k += 1
            text = b"".join(buf).rstrip().rstrip(b",")
            buf = []
            yield f"object {k} line {start}", _parse(text)
    if buf:
        yield f"object {k + 1} line {start}", BadRecord("file ends inside a JSON object (truncated)")


def _read_array(path: Path) -> Iterator[_Item]:
    if path.stat().st_size > MAX_ARRAY_BYTES:
        limit = MAX_ARRAY_BYTES >> 20
        yield "item 1", BadRecord(f"top-level JSON array over {limit} MiB: export as JSON lines")
        return
    doc = _parse(path.read_bytes().removeprefix(UTF8_BOM))
    if isinstance(doc, BadRecord):
        yield "item 1", doc
        return
    for i, obj in enumerate(doc if isinstance(doc, list) else [doc], 1):
        yield f"item {i}", obj


def ingest(case: Any, path: Path, fmt: str = "evtx_json", progress: Advance | None = None) -> FileResult:
    path = Path(path).resolve()
    tally = Tally(path, fmt)
    with open(path, "rb") as f:
        layout = json_layout(f.read(65536))
        f.seek(0)
        if layout == "array":
            items = _read_array(path)
        elif layout == "pretty":
            items = _read_pretty(f)
        else:
            items = _read_lines(f)
        data: list[str] = []
        refs: list[str] = []
        done = 0
        with WinEventWriter(case, str(path)) as writer:
            for ref, obj in items:
                if isinstance(obj, BadRecord):
                    tally.bad_record(ref, str(obj))
                    continue
                try:
                    event = to_event(obj)
                    text = orjson.dumps(event).decode()
                except (BadRecord, TypeError, KeyError, AttributeError) as exc:
                    reason = str(exc) if isinstance(exc, BadRecord) else f"unexpected shape: {exc!r}"
                    tally.bad_record(ref, reason)
                    continue
                data.append(text)
                refs.append(ref)
                if len(data) >= BATCH_RECORDS:
                    writer.write(data, refs)
                    tally.ok += len(data)
                    data, refs = [], []
                    if progress is not None and not f.closed:
                        pos = f.tell()
                        progress(pos - done)
                        done = pos
            writer.write(data, refs)
            tally.ok += len(data)
            for note in writer.notes:
                tally.errors.append(("", note))
    if progress is not None:
        progress(max(0, path.stat().st_size - done))
    return tally.result()
