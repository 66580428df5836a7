"""Sigma correlation rules (Sigma 2 spec): event_count, value_count, temporal, temporal_ordered.

Runs after `runner.run_rules`, over its `sigma_matches`, with the same rule list (rule_idx = position).

    findings, skipped = run_correlations(case, rules, correlations)

Semantics (one reading of the spec, chosen so a finding can be checked by hand):
- Every event matched by a referenced rule is an *occurrence*, keyed by the correlation's group-by
  values (aliases map a group-by name to each rule's own field). Occurrences with a NULL group-by
  value are dropped, as a SIEM's `stats ... by` would.
- Window: for each group, a window of `timespan` is anchored at every occurrence, [t, t + timespan]
  (bounds included). event_count counts occurrences (an event matched by two referenced rules counts
  once), value_count counts distinct non-NULL values of `condition.field`, temporal counts distinct
  referenced rules (default condition: all of them). temporal_ordered anchors at occurrences of the
  first rule and fires when the others follow in the listed order (ties in time count as in order)
  before t + timespan; its window ends at the last event of the sequence.
- Firing windows of one group that overlap are merged: one finding per (correlation, group, merged
  window). Evidence is every occurrence of the group inside the merged window; count = its events.
- Chaining: a correlation may reference another correlation. Each finding of the inner one is one
  occurrence of the outer one, at the inner finding's last event, carrying the inner group-by values
  and all its evidence. As in pySigma, `generate: false` (the default) keeps the referenced rules and
  correlations from producing findings of their own; `base_rules_used` tells the caller which.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from gridhunt.case import WIN_EVENTS_TABLE, Case, field_key
from gridhunt.report.findings import SEVERITIES, Finding, sort_key
from gridhunt.sigma.ruleset import CompiledRule, CorrelationSpec, Skipped
from gridhunt.sigma.runner import field_expr

DETECTOR = "sigma-correlation"
TYPES = ("event_count", "value_count", "temporal", "temporal_ordered")
OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=", "neq": "<>"}
# The metric each type tests, as a window aggregate over the occurrence table.
_METRIC = {
    "event_count": "count(DISTINCT okey)",
    "value_count": "count(DISTINCT val)",
    "temporal": "count(DISTINCT ref_pos)",
}
_METRIC_NAME = {
    "event_count": "event_count",
    "value_count": "distinct_count",
    "temporal": "rules_matched",
    "temporal_ordered": "rules_matched",
}


@dataclass
class _Ref:
    """One entry of a correlation's `rules` list, resolved."""

    label: str  # as written in the correlation
    rule_idx: int | None = None  # base rule: index into `rules` and sigma_matches.rule_idx
    corr_idx: int | None = None  # chained correlation: index into `correlations`
    target_id: str = ""
    keys: tuple[str, ...] = ()  # what an alias mapping may name this rule by: label, id, name
    fields: list[str] = field(default_factory=list)  # the group-by fields in this rule's events
    value_field: str | None = None  # value_count: the counted field in this rule's events


@dataclass
class _Plan:
    idx: int
    spec: CorrelationSpec
    refs: list[_Ref]
    ops: dict[str, int]  # condition without `field`


@dataclass
class _Occurrence:
    """A finding of a correlation as a correlation chained on it sees it."""

    group: dict[str, str]
    ts: datetime
    uids: list[int]


def _label_index(rules: list[CompiledRule], correlations: list[CorrelationSpec]) -> dict[str, list[tuple[str, int]]]:
    index: dict[str, list[tuple[str, int]]] = {}
    for kind, items in (("rule", rules), ("corr", correlations)):
        for i, r in enumerate(items):
            for key in {r.rule_id, r.name}:
                if key:
                    index.setdefault(str(key), []).append((kind, i))
    return index


def _ops(spec: CorrelationSpec) -> tuple[dict[str, int], str | None]:
    """The comparison part of the condition, or the reason it cannot be run."""
    cond = spec.condition
    if "expression" in cond:
        return {}, f"extended (string) conditions are not supported: {cond['expression']!r}"
    ops: dict[str, int] = {}
    for k, v in cond.items():
        if k == "field":
            continue
        if k not in OPS:
            return {}, f"unknown condition operator {k!r}"
        if isinstance(v, bool) or not isinstance(v, int):
            return {}, f"condition {k} needs an integer, got {v!r}"
        ops[k] = v
    if spec.type in ("temporal", "temporal_ordered"):
        ops = ops or {"gte": len(spec.rules)}  # spec default: every referenced rule
        if spec.type == "temporal_ordered" and ops != {"gte": len(spec.rules)}:
            return {}, "temporal_ordered is only supported with all referenced rules in order (no condition)"
    elif not ops:
        return {}, f"{spec.type} needs a condition (gt, gte, lt, lte, eq or neq)"
    return ops, None


def _static_problem(spec: CorrelationSpec) -> str | None:
    if spec.type not in TYPES:
        return f"unsupported correlation type {spec.type!r}"
    if spec.timespan_seconds <= 0:
        return f"bad timespan ({spec.timespan_seconds} s): must be a positive number of s, m, h or d"
    if not spec.rules:
        return "references no rules"
    if spec.type == "value_count" and not spec.condition.get("field"):
        return "value_count needs condition.field"
    return _ops(spec)[1]


def _alias_field(spec: CorrelationSpec, name: str, ref: _Ref) -> str | None:
    """The field `name` (a group-by name or the value_count field) stands for in `ref`'s events."""
    mapping = spec.aliases.get(name)
    if mapping is None:
        return name
    for k in ref.keys:
        if k in mapping:
            return mapping[k]
    return None


def plan_correlations(
    rules: list[CompiledRule], correlations: list[CorrelationSpec]
) -> tuple[list[_Plan], list[Skipped]]:
    """Resolve references and aliases and check what can be run, without touching the case.

    Plans come in dependency order (a chained correlation after the ones it reads); skipped ones
    are listed in the order of `correlations`."""
    index = _label_index(rules, correlations)
    reasons: dict[int, str] = {}
    plans: dict[int, _Plan] = {}

    def resolve(i: int) -> _Plan | str:
        spec = correlations[i]
        problem = _static_problem(spec)
        if problem:
            return problem
        refs: list[_Ref] = []
        for label in spec.rules:
            hits = index.get(label, [])
            if not hits:
                return f"references unknown rule {label}"
            if len(hits) > 1:
                return f"reference {label} is ambiguous (it names {len(hits)} rules)"
            kind, j = hits[0]
            target: CompiledRule | CorrelationSpec = rules[j] if kind == "rule" else correlations[j]
            keys = tuple(dict.fromkeys(k for k in (label, target.rule_id, target.name) if k))
            ref = _Ref(label, j if kind == "rule" else None, j if kind == "corr" else None, target.rule_id, keys)
            for name in spec.group_by:
                f = _alias_field(spec, name, ref)
                if f is None:
                    return f"alias {name} names no field for rule {label}"
                ref.fields.append(f)
            if spec.type == "value_count":
                ref.value_field = _alias_field(spec, str(spec.condition["field"]), ref)
                if ref.value_field is None:
                    return f"alias {spec.condition['field']} names no field for rule {label}"
            if kind == "corr":
                inner = {field_key(g) for g in correlations[j].group_by}
                for f in ref.fields + ([ref.value_field] if ref.value_field else []):
                    if field_key(f) not in inner:
                        return f"chained correlation {label} does not group by {f}"
            refs.append(ref)
        return _Plan(i, spec, refs, _ops(spec)[0])

    state: dict[int, str] = {}  # "busy" while its dependencies are visited, then "done"
    order: list[int] = []

    def visit(i: int) -> None:
        if state.get(i) == "done":
            return
        if state.get(i) == "busy":
            reasons[i] = "correlation chain loops back on itself"
            return
        state[i] = "busy"
        got = resolve(i)
        if isinstance(got, str):
            reasons[i] = got
        else:
            for ref in got.refs:
                if ref.corr_idx is None:
                    continue
                visit(ref.corr_idx)
                if ref.corr_idx in reasons and i not in reasons:
                    reasons[i] = (
                        "correlation chain loops back on itself"
                        if ref.corr_idx == i or state.get(ref.corr_idx) == "busy"
                        else f"references correlation {ref.label}, which was skipped"
                    )
            if i not in reasons:
                plans[i] = got
                order.append(i)
        state[i] = "done"

    for i in range(len(correlations)):
        visit(i)
    skipped = [
        Skipped(correlations[i].path, correlations[i].rule_id or correlations[i].title, reasons[i])
        for i in sorted(reasons)
    ]
    return [plans[i] for i in order], skipped


def base_rules_used(rules: list[CompiledRule], correlations: list[CorrelationSpec]) -> tuple[set[str], set[str]]:
    """(ids of base rules the runnable correlations read, directly or through a chain;
    ids of those whose own findings are suppressed: referenced by a correlation with generate false)."""
    plans, _ = plan_correlations(rules, correlations)
    needed: set[str] = set()
    hidden: set[str] = set()
    for p in plans:
        for ref in p.refs:
            if ref.rule_idx is not None:
                needed.add(rules[ref.rule_idx].rule_id)
                if not p.spec.generate:
                    hidden.add(rules[ref.rule_idx].rule_id)
    return needed, hidden


def run_correlations(
    case: Case, rules: list[CompiledRule], correlations: list[CorrelationSpec]
) -> tuple[list[Finding], list[Skipped]]:
    """Evaluate `correlations` over the matches `run_rules(case, rules)` left in sigma_matches."""
    plans, skipped = plan_correlations(rules, correlations)
    if not plans:
        return [], skipped
    _check_rule_list(case, rules, plans)
    variants = case.field_variants()
    # generate: false (the default) hides the findings of chained inner correlations too
    hidden = {r.corr_idx for p in plans if not p.spec.generate for r in p.refs if r.corr_idx is not None}
    results: dict[int, list[_Occurrence]] = {}
    findings: list[Finding] = []
    late: list[Skipped] = []
    for plan in plans:
        spec = plan.spec
        lost = [r.label for r in plan.refs if r.corr_idx is not None and r.corr_idx not in results]
        if lost:
            late.append(
                Skipped(spec.path, spec.rule_id or spec.title, f"references correlation {lost[0]}, which failed")
            )
            continue
        try:
            found, occurrences = _run_one(case, plan, variants, results)
        except duckdb.Error as e:
            late.append(Skipped(spec.path, spec.rule_id or spec.title, f"query failed: {str(e).splitlines()[0]}"))
            continue
        results[plan.idx] = occurrences
        if plan.idx not in hidden:
            findings.extend(found)
    for t in ("gh_corr_occ", "gh_corr_fired", "gh_corr_win"):
        case.con.execute(f"DROP TABLE IF EXISTS {t}")
    return sorted(findings, key=sort_key), skipped + late


def _check_rule_list(case: Case, rules: list[CompiledRule], plans: list[_Plan]) -> None:
    # rule_idx in sigma_matches is a position in the list run_rules was given: it must be this one
    try:
        got = dict(case.con.execute("SELECT rule_idx, rule_id FROM sigma_rules").fetchall())
    except duckdb.CatalogException as e:
        raise RuntimeError("run_correlations needs the sigma_matches of run_rules: run it first") from e
    for p in plans:
        for ref in p.refs:
            if ref.rule_idx is not None and got.get(ref.rule_idx) != rules[ref.rule_idx].rule_id:
                raise ValueError("run_correlations must get the same rule list as run_rules")


def _ident_list(cols: list[str], prefix: str = "") -> str:
    """`a.g0, a.g1, ` (with trailing separator) or '' when there is no group-by."""
    return "".join(f"{prefix}{c}, " for c in cols)


def _fill_occurrences(
    case: Case,
    plan: _Plan,
    gcols: list[str],
    variants: dict[str, list[str]],
    results: dict[int, list[_Occurrence]],
) -> None:
    con = case.con
    typed = "".join(f", {c} VARCHAR" for c in gcols)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE gh_corr_occ "
        f"(ref_pos INTEGER, ts TIMESTAMPTZ, okey VARCHAR, val VARCHAR, uids BIGINT[]{typed})"
    )
    for pos, ref in enumerate(plan.refs):
        if ref.rule_idx is not None:
            gexprs = [field_expr(f, None, variants) for f in ref.fields]
            vexpr = field_expr(ref.value_field, None, variants) if ref.value_field else "NULL::VARCHAR"
            where = [
                f"event_uid IN (SELECT event_uid FROM sigma_matches WHERE rule_idx = {ref.rule_idx})",
                "ts IS NOT NULL",
                *(f"({g}) IS NOT NULL" for g in gexprs),
            ]
            con.execute(
                f"INSERT INTO gh_corr_occ SELECT {pos}, ts, 'e' || event_uid, {vexpr}, [event_uid]"
                f"{''.join(', ' + g for g in gexprs)} FROM {WIN_EVENTS_TABLE} WHERE {' AND '.join(where)}"
            )
            continue
        assert ref.corr_idx is not None
        rows = []
        for n, occ in enumerate(results[ref.corr_idx]):
            by_key = {field_key(k): v for k, v in occ.group.items()}
            gvals = [by_key[field_key(f)] for f in ref.fields]
            val = by_key[field_key(ref.value_field)] if ref.value_field else None
            rows.append([pos, occ.ts, f"c{ref.corr_idx}:{n}", val, occ.uids, *gvals])
        if rows:
            marks = ", ".join("?" * (5 + len(gcols)))
            con.executemany(f"INSERT INTO gh_corr_occ VALUES ({marks})", rows)


def _fired_sql(plan: _Plan, gcols: list[str]) -> str:
    """Firing windows (group, wstart, wend, metric): one per anchor occurrence whose window fires."""
    span = plan.spec.timespan_seconds
    sel = _ident_list(gcols)
    if plan.spec.type == "temporal_ordered":
        # greedy: from each first-rule occurrence take the earliest next-rule occurrence at or after it
        steps = [f"s0 AS (SELECT {sel}ts AS t0, ts AS tcur FROM gh_corr_occ WHERE ref_pos = 0)"]
        for k in range(1, len(plan.refs)):
            on = " AND ".join([f"a.{c} = b.{c}" for c in gcols] + ["b.ts >= a.tcur"])
            steps.append(
                f"s{k} AS (SELECT {_ident_list(gcols, 'a.')}a.t0, b.ts AS tcur FROM s{k - 1} a "
                f"ASOF JOIN (SELECT * FROM gh_corr_occ WHERE ref_pos = {k}) b ON {on})"
            )
        last = f"s{len(plan.refs) - 1}"
        return (
            f"WITH {', '.join(steps)} SELECT DISTINCT {sel}t0 AS wstart, tcur AS wend, {len(plan.refs)} AS metric "
            f"FROM {last} WHERE tcur <= t0 + to_seconds({span})"
        )
    part = f"PARTITION BY {', '.join(gcols)} " if gcols else ""
    cond = " AND ".join(f"metric {OPS[op]} {v}" for op, v in sorted(plan.ops.items()))
    return (
        f"SELECT DISTINCT {sel}ts AS wstart, ts + to_seconds({span}) AS wend, metric FROM ("
        f"SELECT {sel}ts, {_METRIC[plan.spec.type]} OVER ({part}ORDER BY ts "
        f"RANGE BETWEEN CURRENT ROW AND INTERVAL ({span}) SECOND FOLLOWING) AS metric FROM gh_corr_occ) "
        f"WHERE {cond}"
    )


def _run_one(
    case: Case,
    plan: _Plan,
    variants: dict[str, list[str]],
    results: dict[int, list[_Occurrence]],
) -> tuple[list[Finding], list[_Occurrence]]:
    con = case.con
    spec = plan.spec
    gcols = [f"g{k}" for k in range(len(spec.group_by))]
    sel = _ident_list(gcols)
    part = f"PARTITION BY {', '.join(gcols)} " if gcols else ""
    _fill_occurrences(case, plan, gcols, variants, results)
    con.execute(f"CREATE OR REPLACE TEMP TABLE gh_corr_fired AS {_fired_sql(plan, gcols)}")
    # merge overlapping firing windows of a group (gaps and islands); keep the first window's metric
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_corr_win AS
        SELECT {sel}min(wstart) AS wstart, max(wend) AS wend, arg_min(metric, wstart) AS metric FROM (
            SELECT *, sum(brk) OVER ({part}ORDER BY wstart, wend ROWS UNBOUNDED PRECEDING) AS wid FROM (
                SELECT *, CASE WHEN wstart <= max(wend) OVER ({part}ORDER BY wstart, wend
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) THEN 0 ELSE 1 END AS brk
                FROM gh_corr_fired))
        GROUP BY {sel}wid"""
    )
    on = " AND ".join([f"o.{c} = w.{c}" for c in gcols] + ["o.ts BETWEEN w.wstart AND w.wend"])
    windows = con.execute(
        f"""SELECT [{", ".join(f"w.{c}" for c in gcols)}]::VARCHAR[] AS g, w.wstart, w.wend, w.metric,
            list_sort(list_distinct(flatten(list(o.uids)))) AS uids, list(o.ref_pos) AS refs,
            list_sort(list_distinct(list(o.val))) AS vals, max(o.ts) AS tlast
        FROM gh_corr_win w JOIN gh_corr_occ o ON {on}
        GROUP BY {_ident_list(gcols, "w.")}w.wstart, w.wend, w.metric ORDER BY {_ident_list(gcols, "w.")}w.wstart"""
    ).fetchall()
    events = _event_refs(con, [u for w in windows for u in w[4]])
    findings: list[Finding] = []
    occurrences: list[_Occurrence] = []
    for gvals, wstart, wend, metric, uids, refs, vals, tlast in windows:
        group = dict(zip(spec.group_by, gvals, strict=True))
        occurrences.append(_Occurrence(group, tlast, list(uids)))
        evidence = sorted((events[u] for u in uids if u in events), key=lambda e: (e["ts"], e["event_uid"]))
        if not evidence:
            continue
        findings.append(_finding(plan, group, wstart, wend, metric, refs, vals, evidence))
    return findings, occurrences


def _event_refs(con: duckdb.DuckDBPyConnection, uids: list[int]) -> dict[int, dict[str, Any]]:
    if not uids:
        return {}
    rows = con.execute(
        f"SELECT event_uid, source_file, source_ref, ts FROM {WIN_EVENTS_TABLE} WHERE event_uid IN (SELECT unnest(?))",
        [sorted(set(uids))],
    ).fetchall()
    return {u: {"source_file": f, "source_ref": r, "ts": t, "event_uid": u} for u, f, r, t in rows}


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _finding(
    plan: _Plan,
    group: dict[str, str],
    wstart: datetime,
    wend: datetime,
    metric: int,
    refs: list[int],
    vals: list[str],
    evidence: list[dict[str, Any]],
) -> Finding:
    spec = plan.spec
    per_ref = Counter(refs)
    condition = dict(spec.condition) if spec.type in ("event_count", "value_count") else plan.ops
    details: dict[str, Any] = {
        "type": spec.type,
        "group_by": group,
        "timespan_seconds": spec.timespan_seconds,
        "condition": condition,
        "window": {"start": _iso(wstart), "end": _iso(wend)},
        # what the condition was tested on, in the first window that fired
        "value": int(metric),
        _METRIC_NAME[spec.type]: int(metric),
        "rules": [
            {
                "reference": ref.label,
                "rule_id": ref.target_id,
                "correlation": ref.corr_idx is not None,
                "occurrences": per_ref.get(pos, 0),
            }
            for pos, ref in enumerate(plan.refs)
        ],
        "rule": {"author": spec.author, "references": spec.references, "rule_path": spec.path},
        "tags": spec.tags,
    }
    if spec.type == "value_count":
        details["field"] = spec.condition["field"]
        details["values"] = list(vals)
    return Finding(
        detector=DETECTOR,
        rule_id=spec.rule_id,
        title=spec.title,
        severity=spec.level if spec.level in SEVERITIES else "medium",
        attack=spec.attack,
        entity=", ".join(f"{k}={v}" for k, v in group.items()),
        ts_first=evidence[0]["ts"],
        ts_last=evidence[-1]["ts"],
        count=len(evidence),
        evidence=evidence,
        details=details,
    )
