"""Streaming output files with line bookkeeping for the demo generator.

Every generator hands records to a `Sink` with a timestamp; the sink buffers them, and on
`flush(until)` writes everything older than `until` in time order. Buffers hold only a day
or so of records, so `--size large` never builds the whole data set in memory. The sink
knows the physical line number of every record it writes, which is what labels.json
needs to point at evidence ("line N", 1-based, header lines counted).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gridhunt.demo.labels import LabelBook

# A labelled record: (label id, fields the record must carry; the tests check them).
Tag = tuple[str, dict[str, Any]]
Render = Callable[..., str]


class Sink:
    """One output file. Records are `(ts, seq, render, args, tag)`; `render(ts, *args)`
    returns the line text (no newline). Rendering happens at flush time, in file order,
    so renderers may keep per-file state (e.g. Windows EventRecordID counters)."""

    def __init__(
        self,
        root: Path,
        rel: str,
        book: LabelBook,
        header: list[str] | None = None,
        footer: list[str] | None = None,
    ) -> None:
        self.rel = rel
        self.path = root / rel
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("w", encoding="utf-8", newline="\n")
        self._book = book
        self._footer = footer or []
        self._buf: list[tuple[int, int, Render, tuple[Any, ...], Tag | None]] = []
        self._seq = 0
        self.line = 0
        self.records = 0
        self.ts_min: int | None = None
        self.ts_max: int | None = None
        for h in header or []:
            self._write_raw([h])

    def add(self, ts: int, render: Render, *args: Any, tag: Tag | None = None) -> None:
        self._seq += 1
        self._buf.append((ts, self._seq, render, args, tag))

    def _write_raw(self, lines: list[str]) -> None:
        if lines:
            self._fh.write("\n".join(lines) + "\n")
            self.line += len(lines)

    def flush(self, until: int | None = None) -> None:
        """Write every buffered record with ts < until (all of them when until is None)."""
        if not self._buf:
            return
        # (ts, seq) is unique, so the sort never compares render functions; seq keeps
        # insertion order for equal timestamps, which keeps the output deterministic.
        self._buf.sort(key=lambda r: (r[0], r[1]))
        if until is None:
            ready, self._buf = self._buf, []
        else:
            cut = bisect.bisect_left([r[0] for r in self._buf], until)
            ready, self._buf = self._buf[:cut], self._buf[cut:]
        out: list[str] = []
        line = self.line
        for ts, _seq, render, args, tag in ready:
            out.append(render(ts, *args))
            line += 1
            if tag is not None:
                self._book.evidence(tag[0], self.rel, line, ts, tag[1])
        if ready:
            self.ts_min = ready[0][0] if self.ts_min is None else min(self.ts_min, ready[0][0])
            self.ts_max = ready[-1][0] if self.ts_max is None else max(self.ts_max, ready[-1][0])
        self.records += len(ready)
        self._write_raw(out)

    def close(self) -> None:
        self.flush(None)
        self._write_raw(self._footer)
        self._fh.close()
