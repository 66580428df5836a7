"""The finding model: what every detector produces and every report reads.

One JSON object per line in `findings.jsonl` (schema version FINDINGS_SCHEMA):
finding_id, detector, rule_id, title, severity, attack, entity, ts_first, ts_last, count,
evidence [{source_file, source_ref, ts?, fields?}], details {}.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

FINDINGS_SCHEMA = 1
SEVERITIES = ("informational", "low", "medium", "high", "critical")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
# findings.jsonl lists at most this many evidence records per finding; the case file keeps all.
MAX_EVIDENCE = 1000


@dataclass
class Finding:
    detector: str
    rule_id: str
    title: str
    severity: str
    attack: list[str]
    entity: str
    ts_first: datetime | None
    ts_last: datetime | None
    count: int
    evidence: list[dict[str, Any]]
    details: dict[str, Any] = field(default_factory=dict)
    finding_id: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_RANK:
            raise ValueError(f"unknown severity {self.severity!r}")
        if not self.finding_id:
            key = f"{self.detector}|{self.rule_id}|{self.entity}|{_iso(self.ts_first)}"
            self.finding_id = hashlib.sha256(key.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ts_first"] = _iso(self.ts_first)
        d["ts_last"] = _iso(self.ts_last)
        order = [
            "finding_id",
            "detector",
            "rule_id",
            "title",
            "severity",
            "attack",
            "entity",
            "ts_first",
            "ts_last",
            "count",
            "evidence",
            "details",
        ]
        return {k: d[k] for k in order}


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.isoformat().replace("+00:00", "Z")


def sort_key(f: Finding) -> tuple[Any, ...]:
    """Stable order: time, then most severe first, then rule and entity."""
    return (_iso(f.ts_first) or "", -SEVERITY_RANK[f.severity], f.detector, f.rule_id, f.entity, f.finding_id)


def store_findings(con: Any, findings: list[Finding]) -> None:
    """Replace the case's findings table with `findings` (full evidence kept)."""
    con.execute("DELETE FROM findings")
    if not findings:
        return
    con.executemany(
        "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                f.finding_id,
                f.detector,
                f.rule_id,
                f.title,
                f.severity,
                f.attack,
                f.entity,
                f.ts_first,
                f.ts_last,
                f.count,
                json.dumps(f.evidence, default=str),
                json.dumps(f.details, default=str),
            ]
            for f in findings
        ],
    )


def write_jsonl(path: Path, findings: list[Finding]) -> None:
    with open(path, "wb") as out:
        for f in findings:
            d = f.to_dict()
            if len(d["evidence"]) > MAX_EVIDENCE:
                d["details"] = {**d["details"], "evidence_omitted": len(d["evidence"]) - MAX_EVIDENCE}
                d["evidence"] = d["evidence"][:MAX_EVIDENCE]
            out.write(orjson.dumps(d, default=str) + b"\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, "rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]
