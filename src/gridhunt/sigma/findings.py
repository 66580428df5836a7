"""Sigma matches → findings: one finding per (rule, computer), evidence = every matching event.

The sum of `count` over a rule's findings equals its number of matching events.
"""

from __future__ import annotations

from typing import Any

from gridhunt.case import Case
from gridhunt.report.findings import SEVERITIES, Finding
from gridhunt.sigma.backend import FULLTEXT_COLUMN, LOWER_SUFFIX
from gridhunt.sigma.ruleset import CompiledRule
from gridhunt.sigma.runner import field_expr

DETECTOR = "sigma"
# Matched field values are shown for at most this many evidence events per finding.
FIELDS_SHOWN = 50


def attribution(rule: CompiledRule) -> dict[str, Any]:
    """What DRL 1.1 asks us to keep with every use of a SigmaHQ rule."""
    return {"author": rule.author, "references": rule.references, "rule_path": rule.path}


def sigma_findings(case: Case, rules: list[CompiledRule]) -> list[Finding]:
    con = case.con
    rows = con.execute(
        """
        SELECT m.rule_idx, coalesce(e.computer, '') AS computer, count(*) AS n, min(e.ts), max(e.ts),
            list({'source_file': e.source_file, 'source_ref': e.source_ref, 'ts': e.ts,
                  'event_uid': e.event_uid} ORDER BY e.ts, e.event_uid) AS ev
        FROM sigma_matches m JOIN win_events_data e USING (event_uid)
        GROUP BY ALL ORDER BY m.rule_idx, computer
        """
    ).fetchall()
    out = []
    shown: dict[int, list[dict[str, Any]]] = {}
    for idx, computer, n, t0, t1, ev in rows:
        rule = rules[idx]
        evidence = [
            {"source_file": x["source_file"], "source_ref": x["source_ref"], "ts": x["ts"], "event_uid": x["event_uid"]}
            for x in ev
        ]
        shown.setdefault(idx, []).extend(evidence[:FIELDS_SHOWN])
        out.append(
            Finding(
                detector=DETECTOR,
                rule_id=rule.rule_id,
                title=rule.title,
                severity=rule.level if rule.level in SEVERITIES else "medium",
                attack=rule.attack,
                entity=computer,
                ts_first=t0,
                ts_last=t1,
                count=int(n),
                evidence=evidence,
                details={
                    "rule": attribution(rule),
                    "status": rule.status,
                    "tags": rule.tags,
                    "falsepositives": rule.falsepositives,
                },
            )
        )
    variants = case.field_variants()
    for idx, evidence in shown.items():
        _attach_fields(case, rules[idx], evidence, variants)
    return out


def _attach_fields(
    case: Case, rule: CompiledRule, evidence: list[dict[str, Any]], variants: dict[str, list[str]]
) -> None:
    """Add the values of the fields the rule reads, so an analyst sees why it matched."""
    names = [f for f in rule.fields if f != FULLTEXT_COLUMN and not f.endswith(LOWER_SUFFIX)]
    if not names or not evidence:
        return
    cols = ", ".join(f"{field_expr(f, None, variants)}" for f in names)
    uids = [e["event_uid"] for e in evidence]
    got = case.con.execute(
        f"SELECT event_uid, [{cols}] FROM win_events_data WHERE event_uid IN (SELECT unnest(?))", [uids]
    ).fetchall()
    by_uid = {u: vals for u, vals in got}
    for e in evidence:
        vals = by_uid.get(e["event_uid"]) or []
        e["fields"] = {k: v for k, v in zip(names, vals, strict=False) if v is not None}
