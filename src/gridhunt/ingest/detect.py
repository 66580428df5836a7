"""Format sniffing by content: the first bytes of a file, never its extension alone.

`detect(path)` reads the head once and asks each registered reader's `sniff(head, path)` in
registry order; the first that names a format wins. A sniffer that raises is treated as "not
mine" so one buggy reader cannot hide a file from the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

HEAD_BYTES = 65536
EVTX_MAGIC = b"ElfFile\x00"
UTF8_BOM = b"\xef\xbb\xbf"


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """First `size` bytes; OSError (missing, permission, directory) propagates to the caller."""
    with open(path, "rb") as f:
        return f.read(size)


def detect(path: Path, head: bytes | None = None) -> tuple[str, str] | None:
    """(reader name, format name) or None when no reader recognises the content."""
    from gridhunt.ingest.registry import READERS  # late: readers import this module

    if head is None:
        head = read_head(path)
    for name, reader in READERS.items():
        try:
            fmt = reader.sniff(head, path)
        except Exception:  # noqa: BLE001 - a sniffer bug means "not this format"
            fmt = None
        if fmt:
            return name, fmt
    return None


# ---- JSON shapes (used by the Windows JSON reader) ---------------------------------------------


def json_layout(head: bytes) -> str | None:
    """How JSON records are laid out: 'lines' (one object per line), 'pretty' (pretty-printed
    objects one after another, as `evtx_dump -o json` writes), 'array' (one top-level array),
    or None if the head is not JSON-looking."""
    text = head[len(UTF8_BOM) :] if head.startswith(UTF8_BOM) else head
    text = text.lstrip()
    if text.startswith(b"["):
        return "array"
    if not text.startswith(b"{"):
        return None
    first_line = text.split(b"\n", 1)[0].strip()
    if first_line == b"{":
        return "pretty"
    return "lines"


def first_object_keys(head: bytes) -> set[str]:
    """Top-level keys of the first JSON object in the head, as far as the head shows them.

    A whole first line is parsed when it fits; otherwise (a pretty-printed or very long record)
    the keys are read at nesting depth 1 with a small scanner."""
    text = head[len(UTF8_BOM) :] if head.startswith(UTF8_BOM) else head
    text = text.lstrip()
    if text.startswith(b"["):
        text = text[1:].lstrip()
    line = text.split(b"\n", 1)[0].strip().rstrip(b",")
    try:
        obj: Any = orjson.loads(line)
        if isinstance(obj, dict):
            return set(obj)
    except orjson.JSONDecodeError:
        pass
    return _depth1_keys(text)


def _depth1_keys(text: bytes) -> set[str]:
    keys: set[str] = set()
    depth = 0
    i = 0
    n = len(text)
    expect_key = False
    while i < n:
        c = text[i]
        if c == 0x22:  # '"'
            j = i + 1
            while j < n and text[j] != 0x22:
                j += 2 if text[j] == 0x5C else 1
            if depth == 1 and expect_key:
                keys.add(text[i + 1 : j].decode("utf-8", "replace"))
                expect_key = False
            i = j + 1
            continue
        if c in (0x7B, 0x5B):  # { [
            depth += 1
            expect_key = c == 0x7B and depth == 1
        elif c in (0x7D, 0x5D):  # } ]
            depth -= 1
            if depth == 0:
                break
        elif c == 0x2C and depth == 1:  # ',' at the top level: a key follows
            expect_key = True
        i += 1
    return keys
