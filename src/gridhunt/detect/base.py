"""What every behavioural analytic is, and the one way it turns SQL rows into findings.

An analytic is SQL over the case tables (never file parsing). Its query returns one row per
finding with these columns (extra columns are ignored):

    entity     VARCHAR       who or what the finding is about (account, host, ip pair)
    ts_first   TIMESTAMPTZ
    ts_last    TIMESTAMPTZ
    count      BIGINT        events behind the finding (evidence may be capped, count is not)
    evidence   LIST(STRUCT(source_file, source_ref, ts, fields STRUCT/MAP))
    details    STRUCT / MAP  the numbers that made it fire (thresholds, scores, baselines)
    severity   VARCHAR       optional: overrides the analytic's default severity
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gridhunt.report.findings import Finding

# evidence records per analytic finding kept (the count stays exact): findings.jsonl shows at most
# 1,000 anyway, and more cost memory for nothing (299 beacon pairs x 5,000 records = 3.6 GiB of dicts)
MAX_EVIDENCE_ROWS = 1000


@dataclass
class Context:
    """What an analytic gets: the open case and its own settings (from detect/defaults.yaml,
    overridden by the user's --config)."""

    case: Any
    settings: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)  # shown in summary.json, e.g. "no geo data"

    def params(self, name: str) -> dict[str, Any]:
        return self.settings.get(name, {})

    def table_rows(self, table: str, where: str = "") -> int:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(self.case.con.execute(sql).fetchall()[0][0])


@dataclass(frozen=True)
class Analytic:
    name: str  # also the findings' rule_id, e.g. "auth.password_spray"
    title: str
    severity: str
    attack: tuple[str, ...]
    needs: tuple[str, ...]  # tables that must hold rows, else the analytic is skipped (and says so)
    run: Callable[[Context, Analytic], list[Finding]]
    description: str = ""

    @property
    def theme(self) -> str:
        return self.name.split(".", 1)[0]


def _plain(value: Any) -> Any:
    """DuckDB result values -> JSON-friendly Python (MAPs come back as dicts already)."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 4)
    return value


def query_findings(
    ctx: Context, analytic: Analytic, sql: str, params: list[Any] | None = None, title: str | None = None
) -> list[Finding]:
    """Run `sql` (shape in the module docstring) and build one Finding per row."""
    cur = ctx.case.con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    out = []
    for values in cur.fetchall():
        row = dict(zip(names, values, strict=True))
        evidence = [_plain(e) for e in (row.get("evidence") or [])][:MAX_EVIDENCE_ROWS]
        details = _plain(row.get("details") or {})
        out.append(
            Finding(
                detector=analytic.theme,
                rule_id=analytic.name,
                title=row.get("title") or title or analytic.title,
                severity=row.get("severity") or analytic.severity,
                attack=list(analytic.attack),
                entity=str(row["entity"]),
                ts_first=row["ts_first"],
                ts_last=row["ts_last"],
                count=int(row["count"]),
                evidence=evidence,
                details=details,
            )
        )
    return out
