"""The hunt pipeline as a library: ingest evidence, run Sigma rules, write findings and a summary.

`cli.py` only parses options and shows progress; everything here can be called from Python.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gridhunt import __version__
from gridhunt.assess.updates import assess_updates
from gridhunt.assess.vendor import assess_vendors
from gridhunt.case import Case
from gridhunt.detect import AnalyticsResult, all_analytics, run_analytics
from gridhunt.detect.settings import load_settings
from gridhunt.ingest import IngestReport, ingest_paths
from gridhunt.report.findings import SEVERITIES, Finding, sort_key, store_findings, write_jsonl
from gridhunt.sigma.correlation import base_rules_used, run_correlations
from gridhunt.sigma.findings import sigma_findings
from gridhunt.sigma.ruleset import RuleSet, Skipped, load_rules, packaged_rule_dirs
from gridhunt.sigma.runner import RunStats, run_rules

SUMMARY_SCHEMA = 1


@dataclass
class HuntResult:
    ingest: IngestReport
    rules: RuleSet
    run: RunStats
    findings: list[Finding]
    seconds: dict[str, float] = field(default_factory=dict)
    out_dir: Path | None = None
    correlations_run: int = 0
    correlations_skipped: list[Skipped] = field(default_factory=list)
    analytics: AnalyticsResult = field(default_factory=AnalyticsResult)
    assess: dict[str, Any] = field(default_factory=dict)  # summary.json "assess": one section per check

    def summary(self) -> dict[str, Any]:
        ing = self.ingest
        by_sev = Counter(f.severity for f in self.findings)
        return {
            "schema_version": SUMMARY_SCHEMA,
            "gridhunt_version": __version__,
            "ingest": {
                "files_read": ing.files_read,
                "files_skipped": ing.files_skipped,
                "auth_rows_from_windows": ing.auth_rows_from_windows,
                "records_ok": ing.records_ok,
                "records_bad": ing.records_bad,
                "records_ignored": ing.records_ignored,
                "files": [
                    {
                        "path": f.path,
                        "format": f.format,
                        "records_ok": f.records_ok,
                        "records_bad": f.records_bad,
                        "records_ignored": f.records_ignored,
                        "notes": f.notes,
                        "skipped_reason": f.skipped_reason,
                        "errors": [{"position": p, "reason": r} for p, r in f.errors[:20]],
                        "errors_total": len(f.errors),
                        "seconds": round(f.seconds, 3),
                    }
                    for f in ing.files
                ],
            },
            "rules": {
                **self.rules.summary(),
                "rules_run": self.run.rules_run,
                "rule_errors": [{"rule_id": r, "reason": why} for r, why in self.run.rule_errors],
                "skipped": [{"path": s.path, "rule": s.rule, "reason": s.reason} for s in self.rules.skipped],
                "without_event_source": sorted(r.rule_id for r in self.rules.unmapped),
                "correlation_rules_run": self.correlations_run,
                "correlation_rules_skipped": len(self.correlations_skipped),
                "correlation_skipped": [
                    {"path": s.path, "rule": s.rule, "reason": s.reason} for s in self.correlations_skipped
                ],
            },
            "analytics": self.analytics.summary(),
            "assess": self.assess,
            "events_matched": self.run.matches,
            "findings": {"total": len(self.findings), "by_severity": {s: by_sev.get(s, 0) for s in SEVERITIES}},
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def load_placeholders(path: Path | None) -> dict[str, list[str]]:
    """A YAML mapping of placeholder name → list of values (for SigmaHQ's `%name%` rules)."""
    if path is None:
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of placeholder name to a list of values")
    return {str(k): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in data.items()}


def hunt(
    evidence: Sequence[Path],
    case_path: Path | None = None,
    rule_paths: Sequence[Path] | None = None,
    out_dir: Path | None = None,
    placeholders: dict[str, list[str]] | None = None,
    min_level: str = "informational",
    progress: Any = None,
    on_stage: Callable[[str], None] | None = None,
    settings_path: Path | None = None,
    mmdb_paths: Sequence[Path] = (),
) -> HuntResult:
    """Ingest `evidence` into a case file, run the rules and the behavioural analytics, write
    OUT/findings.jsonl + summary.json. `settings_path`: analytics thresholds (detect/defaults.yaml
    shape); `mmdb_paths`: MaxMind-format GeoIP files."""
    seconds: dict[str, float] = {}
    stage = on_stage or (lambda s: None)
    t = time.perf_counter()
    stage("loading rules")
    settings = load_settings(settings_path)  # a bad --config fails before any work is done
    rules = load_rules(list(rule_paths) if rule_paths else packaged_rule_dirs())
    floor = SEVERITIES.index(min_level)
    selected = [r for r in rules.rules if r.level not in SEVERITIES or SEVERITIES.index(r.level) >= floor]
    # correlations read their base rules whatever those rules' level; with generate: false (the Sigma
    # default) a base rule gives no findings of its own
    needed, hidden = base_rules_used(rules.rules, rules.correlations)
    shown = {r.rule_id for r in selected} - hidden
    selected = [r for r in rules.rules if r.rule_id in shown or r.rule_id in needed]
    seconds["rules"] = time.perf_counter() - t
    with Case.open(case_path) as case:
        t = time.perf_counter()
        stage("ingesting evidence")
        report = ingest_paths(case, evidence, progress=progress)
        seconds["ingest"] = time.perf_counter() - t
        t = time.perf_counter()
        stage("running rules")
        task = progress.add_task("rules", total=len(selected)) if progress is not None else None
        run = run_rules(
            case,
            selected,
            placeholders=placeholders,
            on_progress=(lambda n: progress.advance(task, n)) if task is not None else None,
        )
        seconds["detect"] = time.perf_counter() - t
        t = time.perf_counter()
        findings = [f for f in sigma_findings(case, selected) if f.rule_id in shown]
        corr_findings, corr_skipped = run_correlations(case, selected, rules.correlations)
        corr_findings = [f for f in corr_findings if SEVERITIES.index(f.severity) >= floor]
        seconds["findings"] = time.perf_counter() - t
        t = time.perf_counter()
        stage("running analytics")
        atask = progress.add_task("analytics", total=len(all_analytics())) if progress is not None else None
        analytics = run_analytics(
            case,
            settings,
            mmdb_paths,
            on_progress=(lambda name: progress.update(atask, description=name, advance=1))
            if atask is not None
            else None,
        )
        assess_vendors(case, analytics)  # vendor exposure + secrets rotation: assess.* findings and runs
        seconds["analytics"] = time.perf_counter() - t
        t = time.perf_counter()
        stage("verifying updates")
        update_findings, update_summary = assess_updates(case)
        seconds["assess"] = time.perf_counter() - t
        t = time.perf_counter()
        shown_analytics = [f for f in analytics.findings + update_findings if SEVERITIES.index(f.severity) >= floor]
        findings = sorted(findings + corr_findings + shown_analytics, key=sort_key)
        store_findings(case.con, findings)
        seconds["findings"] += time.perf_counter() - t
        result = HuntResult(
            report,
            rules,
            run,
            findings,
            seconds,
            out_dir,
            len(rules.correlations) - len(corr_skipped),
            corr_skipped,
            analytics,
            {"updates": update_summary},
        )
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            write_jsonl(out_dir / "findings.jsonl", findings)
            (out_dir / "summary.json").write_text(json.dumps(result.summary(), indent=2, default=str) + "\n")
    return result
