"""Behavioural analytics: SQL over the case tables, one module per theme (registry.THEMES).

    result = run_analytics(case, settings=load_settings(path), mmdb_paths=[...])

Each analytic reports what it did in `result.runs` (findings, seconds, or why it was skipped:
switched off, or its tables are empty), so nothing is skipped silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridhunt import geo
from gridhunt.detect.base import Analytic, Context
from gridhunt.detect.settings import load_settings
from gridhunt.report.findings import Finding


@dataclass
class AnalyticRun:
    name: str
    findings: int = 0
    seconds: float = 0.0
    skipped_reason: str | None = None
    error: str | None = None


@dataclass
class AnalyticsResult:
    findings: list[Finding] = field(default_factory=list)
    runs: list[AnalyticRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "analytics_run": sum(1 for r in self.runs if r.skipped_reason is None and r.error is None),
            "analytics": [
                {k: v for k, v in vars(r).items() if v is not None and (k != "seconds" or r.skipped_reason is None)}
                for r in self.runs
            ],
            "notes": self.notes,
        }


def all_analytics() -> list[Analytic]:
    from gridhunt.detect.registry import THEMES

    return [a for theme in THEMES for a in theme.ANALYTICS]


def run_analytics(
    case: Any,
    settings: dict[str, dict[str, Any]] | None = None,
    mmdb_paths: Sequence[Path] = (),
    only: Sequence[str] | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> AnalyticsResult:
    """Run every registered analytic (or those named in `only`, by name or theme)."""
    from gridhunt.detect.registry import THEMES

    settings = settings if settings is not None else load_settings()
    ctx = Context(case, settings)
    result = AnalyticsResult()
    looked_up = geo.enrich(case, (("auth", "src_ip"),), mmdb_paths, refresh=True)
    if looked_up:
        sql = "SELECT count(*) FROM ip_geo WHERE NOT internal AND country IS NULL"
        unknown = case.con.execute(sql).fetchall()[0][0]
        result.notes.append(f"geo: {looked_up} source addresses looked up, {unknown} public ones without a country")
    for theme in THEMES:
        wanted = [a for a in theme.ANALYTICS if not only or a.name in only or a.theme in only]
        if not wanted:
            continue
        prepare = getattr(theme, "prepare", None)
        prepare_error = None
        if prepare is not None:
            try:
                prepare(ctx)
            except Exception as exc:  # noqa: BLE001 - a broken theme must not stop the other themes
                prepare_error = f"prepare: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        for a in wanted:
            if on_progress is not None:  # every analytic, run or skipped, moves the bar once
                on_progress(a.name)
            run = AnalyticRun(a.name)
            result.runs.append(run)
            if not settings.get(a.name, {}).get("enabled", True):
                run.skipped_reason = "disabled in settings"
                continue
            if prepare_error is not None:
                run.error = prepare_error
                continue
            empty = [t for t in a.needs if ctx.table_rows(t) == 0]
            if empty:
                run.skipped_reason = f"no rows in {', '.join(empty)}"
                continue
            started = time.perf_counter()
            try:
                found = a.run(ctx, a)
            except Exception as exc:  # noqa: BLE001 - one broken analytic must not stop the others
                run.error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                found = []
            run.seconds = round(time.perf_counter() - started, 3)
            run.findings = len(found)
            result.findings.extend(found)
    result.notes.extend(ctx.notes)
    return result
