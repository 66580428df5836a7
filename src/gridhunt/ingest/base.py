"""Result types shared by every reader, and the reader contract.

A reader module exposes:

    sniff(head: bytes, path: Path) -> str | None   # format name if the content is ours, else None
    ingest(case, path: Path, fmt: str) -> FileResult   # may also take `progress=` (see Advance)

Readers count bad records instead of raising; `ingest_paths` still guards against a reader bug so
one file can never stop a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Per-file cap on kept error positions; records_bad stays exact.
MAX_ERRORS = 200

# Progress callback handed to readers: advance by this many bytes of the current file.
Advance = Callable[[int], None]


@dataclass
class FileResult:
    path: str
    format: str | None
    records_ok: int = 0
    records_bad: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (position, reason)
    seconds: float = 0.0
    skipped_reason: str | None = None
    # records recognised but with nothing to store (say a syslog message id no table needs): counted, not bad
    records_ignored: int = 0
    notes: list[str] = field(default_factory=list)  # what was read, ignored or left empty, and why

    @property
    def first_error(self) -> str | None:
        if not self.errors:
            return None
        pos, reason = self.errors[0]
        return f"{pos}: {reason}" if pos else reason


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    auth_rows_from_windows: int = 0  # logon events also written to the auth table

    @property
    def files_read(self) -> int:
        return sum(1 for f in self.files if f.skipped_reason is None)

    @property
    def files_skipped(self) -> int:
        return sum(1 for f in self.files if f.skipped_reason is not None)

    @property
    def records_ok(self) -> int:
        return sum(f.records_ok for f in self.files)

    @property
    def records_bad(self) -> int:
        return sum(f.records_bad for f in self.files)

    @property
    def records_ignored(self) -> int:
        return sum(f.records_ignored for f in self.files)

    def messages(self) -> list[str]:
        """One line per skipped file and per kept error: `<file>: <position>: <reason>`.

        Files are named by base name; when two files in the run share one, by full path."""
        names = [Path(f.path).name for f in self.files]
        dup = {n for n in names if names.count(n) > 1}
        out: list[str] = []
        for f, name in zip(self.files, names, strict=True):
            shown = f.path if name in dup else name
            if f.skipped_reason is not None:
                out.append(f"{shown}: skipped: {f.skipped_reason}")
            for pos, reason in f.errors:
                out.append(f"{shown}: {pos}: {reason}" if pos else f"{shown}: {reason}")
            hidden = f.records_bad - len(f.errors)
            if f.errors and hidden > 0:
                out.append(f"{shown}: {hidden} more bad records not listed")
        return out


class Tally:
    """Counts good/bad records of one file and keeps the first MAX_ERRORS positions."""

    def __init__(self, path: Path, fmt: str | None) -> None:
        self.path = path
        self.fmt = fmt
        self.ok = 0
        self.bad = 0
        self.errors: list[tuple[str, str]] = []
        self.ignored = 0
        self.notes: list[str] = []
        self.started = time.perf_counter()

    def bad_record(self, position: str, reason: str, count: int = 1) -> None:
        self.bad += count
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((position, reason))

    def result(self, skipped_reason: str | None = None) -> FileResult:
        return FileResult(
            path=str(self.path),
            format=self.fmt,
            records_ok=self.ok,
            records_bad=self.bad,
            errors=self.errors,
            seconds=time.perf_counter() - self.started,
            skipped_reason=skipped_reason,
            records_ignored=self.ignored,
            notes=self.notes,
        )


class Reader(Protocol):
    """What the registry holds (a module satisfies it)."""

    def sniff(self, head: bytes, path: Path) -> str | None: ...

    def ingest(self, case: Any, path: Path, fmt: str) -> FileResult: ...
