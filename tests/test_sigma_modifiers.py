"""Every Sigma 2 value modifier, end to end: rule YAML → backend → runner → DuckDB, over real events.

Fixtures live in tests/data/sigma/modifiers/: `<topic>.yml` holds one or more rules (keyed by title) and
`<topic>.jsonl` the evtx_dump-style events for them. Each event names, in its EventData field `Expect`,
the titles of the rules of its topic that must match it; every other rule of the topic must not. A
rule is therefore checked against its hits and its near misses at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import sigma.policy
import yaml
from sigma.policy.profiles import TrustedPolicy

from gridhunt.case import WIN_EVENTS_TABLE, Case
from gridhunt.ingest import ingest_paths
from gridhunt.sigma.ruleset import CompiledRule, RuleSet, load_rules
from gridhunt.sigma.runner import RunStats, run_rules

DATA = Path(__file__).resolve().parent / "data" / "sigma" / "modifiers"
PLACEHOLDERS: dict[str, list[str]] = {"admins": ["Administrator", "svc_backup", "50%_x"], "nobody": []}
# Regexes RE2 cannot run. pySigma 2's default SafePolicy validates regexes with RE2 and rejects them
# before our backend sees them, so these are loaded under pySigma's TrustedPolicy (Python `re`).
PYTHON_REGEX_TOPICS = ("regex_lookahead",)
# Rules that must never match: a placeholder with an empty value list, and one without any values.
NEVER_MATCH = frozenset({"expand-empty", "expand-unknown"})

Event = tuple[str, str]  # (topic, source_ref)


def _titles(path: Path) -> list[str]:
    return [str(doc["title"]) for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


RULES: list[tuple[str, str]] = [(p.stem, t) for p in sorted(DATA.glob("*.yml")) for t in _titles(p)]


@dataclass
class Hunt:
    rules: list[CompiledRule]
    skipped: dict[str, str]  # rule title → why it could not be converted
    stats: RunStats
    expected: dict[str, set[Event]]  # rule title → events that must match
    matched: dict[str, set[Event]]  # rule title → events that did match
    events: dict[Event, str]  # event → its EventData, for failure messages
    topic_events: dict[str, set[Event]]


def _load(paths: list[Path], trusted: bool = False) -> RuleSet:
    if not trusted:
        return load_rules(paths, use_cache=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sigma.policy, "default_policy", TrustedPolicy)
        return load_rules(paths, use_cache=False)


def _title_of(skipped_rule_id: str | None, path: str) -> str:
    for doc in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")):
        if doc and str(doc.get("id")) == skipped_rule_id:
            return str(doc["title"])
    return f"{path}: {skipped_rule_id}"


def _topic(source_file: str) -> str:
    return Path(source_file).stem


@pytest.fixture(scope="module")
def hunt(tmp_path_factory: pytest.TempPathFactory) -> Hunt:
    with Case.open(tmp_path_factory.mktemp("modifiers") / "case.duckdb") as case:
        report = ingest_paths(case, sorted(DATA.glob("*.jsonl")))
        assert report.files_skipped == 0 and report.records_bad == 0
        yml = sorted(DATA.glob("*.yml"))
        sets = [
            _load([p for p in yml if p.stem not in PYTHON_REGEX_TOPICS]),
            _load([p for p in yml if p.stem in PYTHON_REGEX_TOPICS], trusted=True),
        ]
        rules = [r for rs in sets for r in rs.rules]
        skipped = {_title_of(s.rule, s.path): s.reason for rs in sets for s in rs.skipped}
        stats = run_rules(case, rules, placeholders=PLACEHOLDERS)
        events = case.con.execute(
            f"SELECT source_file, source_ref, fields['Expect'], CAST(fields AS VARCHAR) FROM {WIN_EVENTS_TABLE}"
        ).fetchall()
        matches = case.con.execute(
            f"""SELECT r.title, e.source_file, e.source_ref FROM sigma_matches m
                JOIN sigma_rules r USING (rule_idx) JOIN {WIN_EVENTS_TABLE} e USING (event_uid)"""
        ).fetchall()
    expected: dict[str, set[Event]] = {}
    topic_events: dict[str, set[Event]] = {}
    shown: dict[Event, str] = {}
    for src, ref, expect, fields in events:
        ev = (_topic(src), str(ref))
        shown[ev] = fields
        topic_events.setdefault(ev[0], set()).add(ev)
        for title in (expect or "").split():
            expected.setdefault(title, set()).add(ev)
    matched: dict[str, set[Event]] = {}
    for title, src, ref in matches:
        matched.setdefault(title, set()).add((_topic(src), str(ref)))
    return Hunt(rules, skipped, stats, expected, matched, shown, topic_events)


def test_fixture_rules_have_hits_and_misses() -> None:
    titles = [t for _, t in RULES]
    assert len(titles) == len(set(titles)), "rule titles must be unique"
    for topic, title in RULES:
        expects = [line for line in (DATA / f"{topic}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
        hits = [e for e in expects if title in orjson.loads(e)["Event"]["EventData"]["Expect"].split()]
        assert hits or title in NEVER_MATCH, f"{title}: no event that must match"
        assert len(hits) < len(expects), f"{title}: no event that must not match"


def test_all_rules_ran_cleanly(hunt: Hunt) -> None:
    assert hunt.skipped == {}
    assert sorted(r.title for r in hunt.rules) == sorted(t for _, t in RULES)
    assert hunt.stats.rule_errors == []
    assert hunt.stats.rules_without_source == []
    assert not set(hunt.expected) - {t for _, t in RULES}, "an event expects a rule that does not exist"


@pytest.mark.parametrize(("topic", "title"), RULES, ids=[f"{t}:{title}" for t, title in RULES])
def test_rule_matches_exactly_its_expected_events(hunt: Hunt, topic: str, title: str) -> None:
    assert title not in hunt.skipped, f"{title} was not converted: {hunt.skipped[title]}"
    mine = hunt.topic_events[topic]
    got = hunt.matched.get(title, set()) & mine
    want = hunt.expected.get(title, set())
    missed = sorted(want - got)
    extra = sorted(got - want)
    lines = [f"missed  {ref}: {hunt.events[(topic, ref)]}" for _, ref in missed]
    lines += [f"matched {ref}: {hunt.events[(topic, ref)]}" for _, ref in extra]
    assert not lines, f"{title}:\n" + "\n".join(lines)


def test_python_regex_fallback_is_used(hunt: Hunt) -> None:
    by_title = {r.title: r for r in hunt.rules}
    for title in ("re-lookahead", "re-lookbehind-i"):
        assert by_title[title].python_regex
        assert "gh_pyregex(" in by_title[title].expr
    assert not by_title["re-i"].python_regex
    assert "regexp_matches(" in by_title["re-i"].expr


def test_lookahead_rule_loads_through_load_rules() -> None:
    """Look-around regexes (which RE2 refuses) load and are marked for the Python fallback."""
    rs = load_rules([DATA / "regex_lookahead.yml"], use_cache=False)
    assert not rs.skipped
    assert all(r.python_regex for r in rs.rules)


def test_placeholders_not_given_at_all(tmp_path: Path) -> None:
    """Without any placeholder values an `expand` selection matches nothing and its negation everything."""
    with Case.open(tmp_path / "case.duckdb") as case:
        ingest_paths(case, [DATA / "expand.jsonl"])
        rs = _load([DATA / "expand.yml"])
        assert not rs.skipped
        stats = run_rules(case, rs.rules, placeholders=None)
        assert stats.rule_errors == []
        rows = case.con.execute(
            f"""SELECT r.title, count(*) FROM sigma_matches m JOIN sigma_rules r USING (rule_idx)
                JOIN {WIN_EVENTS_TABLE} e USING (event_uid) GROUP BY 1 ORDER BY 1"""
        ).fetchall()
    assert rows == [("expand-list", 1), ("expand-not-empty-filter", 3), ("expand-not-filter", 3)]
