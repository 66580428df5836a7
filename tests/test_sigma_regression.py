"""SigmaHQ's own regression tests: each rule, hunted over its EVTX, matches at least match_count.

All 202 EVTX files go into one case and all 202 rules run once; matches are then counted per
(rule, file). Rules evaluate events independently, so this equals running each rule alone on its
file (the upstream procedure), at a fraction of the time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridhunt.case import Case
from gridhunt.ingest import ingest_paths
from gridhunt.sigma.ruleset import load_rules
from gridhunt.sigma.runner import run_rules
from tests.conftest import SHARED

INDEX = SHARED / "sigma" / "regression_index.json"
ENTRIES = json.loads(INDEX.read_text()) if INDEX.exists() else []


@pytest.fixture(scope="module")
def counts(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], int]:
    sigma = SHARED / "sigma"
    rules = load_rules([sigma / e["rule_path"] for e in ENTRIES])
    assert not rules.skipped, rules.skipped
    with Case.open(tmp_path_factory.mktemp("reg") / "case.duckdb") as case:
        report = ingest_paths(case, [sigma / e["evtx_path"] for e in ENTRIES])
        assert report.files_skipped == 0 and report.records_bad == 0
        stats = run_rules(case, rules.rules)
        assert not stats.rule_errors, stats.rule_errors
        rows = case.con.execute(
            """SELECT r.rule_id, e.source_file, count(*) FROM sigma_matches m
               JOIN sigma_rules r USING (rule_idx) JOIN win_events_data e USING (event_uid) GROUP BY ALL"""
        ).fetchall()
    return {(rid, str(Path(f).resolve())): n for rid, f, n in rows}


def test_index_present() -> None:
    assert len(ENTRIES) == 202, "regression_index.json not found or changed"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["rule_path"].rsplit("/", 1)[-1] for e in ENTRIES])
def test_rule_matches_its_regression_evtx(entry: dict, counts: dict[tuple[str, str], int]) -> None:
    evtx = str((SHARED / "sigma" / entry["evtx_path"]).resolve())
    got = counts.get((entry["rule_id"], evtx), 0)
    expected = entry["match_count"] or 1  # upstream: a minimum; null means at least one
    assert got >= expected, f"{entry['rule_path']}: {got} matches, expected at least {expected}"
