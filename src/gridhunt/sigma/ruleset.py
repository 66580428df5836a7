"""Load Sigma rules from files and folders, convert them once, and say what was skipped and why.

Conversions are cached per rule file (keyed by its SHA-256 and by the converter's own source),
so a hunt with 2,800 rules starts in a fraction of a second after the first run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.policy.profiles import TrustedPolicy
from sigma.rule import SigmaRule

from gridhunt.sigma import backend as backend_module
from gridhunt.sigma.backend import DuckDBBackend, required_event_ids
from gridhunt.sigma.logsources import sources_for

RULE_SUFFIXES = (".yml", ".yaml")
_ATTACK_TAG = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$", re.IGNORECASE)
LEVELS = ("informational", "low", "medium", "high", "critical")


@dataclass
class CompiledRule:
    """A Sigma detection rule converted to a DuckDB boolean expression, with its metadata."""

    rule_id: str
    title: str
    level: str
    status: str
    path: str
    logsource: dict[str, str]
    expr: str
    fields: list[str]
    python_regex: bool = False
    event_ids: list[int] | None = None  # EventIDs the rule can match; None: not bounded
    name: str | None = None
    description: str = ""
    author: str = ""
    references: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    falsepositives: list[str] = field(default_factory=list)

    @property
    def attack(self) -> list[str]:
        out = []
        for t in self.tags:
            m = _ATTACK_TAG.match(t)
            if m:
                out.append(m.group(1).upper())
        return sorted(set(out))

    @property
    def sources(self) -> tuple[Any, ...]:
        ls = self.logsource
        return sources_for(ls.get("product"), ls.get("category"), ls.get("service"))


@dataclass
class CorrelationSpec:
    """A Sigma correlation rule as the correlation engine needs it."""

    rule_id: str
    title: str
    level: str
    path: str
    type: str
    rules: list[str]  # referenced rule ids or names
    group_by: list[str]
    timespan_seconds: int
    condition: dict[str, Any]
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    name: str | None = None
    author: str = ""
    references: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    description: str = ""
    # Sigma spec: false (default) = the referenced rules give no findings of their own
    generate: bool = False

    @property
    def attack(self) -> list[str]:
        return sorted({m.group(1).upper() for t in self.tags if (m := _ATTACK_TAG.match(t))})


@dataclass
class Skipped:
    path: str
    rule: str | None  # rule id or title when known
    reason: str


@dataclass
class RuleSet:
    rules: list[CompiledRule] = field(default_factory=list)
    correlations: list[CorrelationSpec] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files_read: int = 0

    @property
    def unmapped(self) -> list[CompiledRule]:
        """Converted rules whose logsource names no Windows event source we know."""
        return [r for r in self.rules if not r.sources]

    def summary(self) -> dict[str, int]:
        return {
            "rule_files": self.files_read,
            "rules_converted": len(self.rules),
            "correlation_rules": len(self.correlations),
            "rules_skipped": len(self.skipped),
            "rules_without_event_source": len(self.unmapped),
        }


def packaged_rule_dirs() -> list[Path]:
    """The rules that ship inside the package: SigmaHQ's Windows rules and our own pack."""
    base = Path(str(resources.files("gridhunt") / "rules"))
    return [p for p in (base / "sigmahq", base / "gridhunt") if p.is_dir()]


def _converter_fingerprint() -> str:
    h = hashlib.sha256()
    for mod in (backend_module, __import__(__name__, fromlist=["x"])):
        h.update(Path(mod.__file__ or "").read_bytes())
    return h.hexdigest()[:16]


def _cache_path() -> Path:
    root = Path(os.environ.get("GRIDHUNT_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    if not os.environ.get("GRIDHUNT_CACHE"):
        root = root / "gridhunt"
    return root / f"sigma-{_converter_fingerprint()}.json"


def iter_rule_files(paths: Iterable[Path], skipped: list[Skipped]) -> Iterator[Path]:
    for p in paths:
        p = Path(p)
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.suffix in RULE_SUFFIXES and f.is_file())
        elif p.is_file():
            yield p
        else:
            skipped.append(Skipped(str(p), None, "no such file or folder"))


def _str_list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, list):
        return [str(x) for x in v]
    return [str(v)]


def _timespan_seconds(text: str) -> int:
    m = re.fullmatch(r"(\d+)([smhdwMy])", str(text).strip())
    if not m:
        raise ValueError(f"bad timespan {text!r}")
    mult = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000}[m.group(2)]
    return int(m.group(1)) * mult


def _convert_doc(doc: dict[str, Any], path: str, be: DuckDBBackend) -> CompiledRule | CorrelationSpec:
    if "correlation" in doc:
        corr = SigmaCorrelationRule.from_dict(doc)  # validates the correlation per the Sigma spec
        c = doc["correlation"]
        cond = c.get("condition") or {}
        group_by = c.get("group-by") or []
        return CorrelationSpec(
            rule_id=str(doc.get("id") or corr.id or ""),
            title=str(doc.get("title", "")),
            level=str(doc.get("level") or "medium").lower(),
            path=path,
            type=str(c["type"]),
            rules=_str_list(c.get("rules")),
            group_by=_str_list(group_by),
            timespan_seconds=_timespan_seconds(c.get("timespan") or c.get("timeframe")),
            # an extended (string) condition is kept as {"expression": ...} so the engine can say it skips it
            condition=dict(cond) if isinstance(cond, dict) else ({"expression": str(cond)} if cond else {}),
            aliases={str(k): {str(a): str(b) for a, b in v.items()} for k, v in (c.get("aliases") or {}).items()},
            name=doc.get("name"),
            author=str(doc.get("author") or ""),
            references=_str_list(doc.get("references")),
            tags=_str_list(doc.get("tags")),
            description=str(doc.get("description") or ""),
            generate=bool(corr.generate),
        )
    # Python's re validates regexes: look-around that RE2 refuses still runs (runner's gh_pyregex fallback).
    rule = SigmaRule.from_dict(doc, policy=TrustedPolicy)
    expr, fields, pyre = be.rule_expression(rule)
    ls = doc.get("logsource") or {}
    return CompiledRule(
        rule_id=str(rule.id or doc.get("id") or ""),
        title=rule.title,
        level=(rule.level.name.lower() if rule.level else "medium"),
        status=(rule.status.name.lower() if rule.status else ""),
        path=path,
        logsource={k: str(v) for k, v in ls.items() if k in ("product", "category", "service")},
        expr=expr,
        fields=sorted(fields),
        python_regex=pyre,
        event_ids=required_event_ids(rule),
        name=doc.get("name"),
        description=str(doc.get("description") or ""),
        author=str(doc.get("author") or ""),
        references=_str_list(doc.get("references")),
        tags=_str_list(doc.get("tags")),
        falsepositives=_str_list(doc.get("falsepositives")),
    )


def _compile_file(data: bytes, path: str, be: DuckDBBackend) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"rules": [], "correlations": [], "skipped": []}
    try:
        docs = [d for d in yaml.load_all(data, Loader=yaml.CSafeLoader) if d is not None]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        out["skipped"].append(asdict(Skipped(path, None, f"broken YAML: {where}{problem}")))
        return out
    if not docs:
        out["skipped"].append(asdict(Skipped(path, None, "empty rule file")))
    for doc in docs:
        if not isinstance(doc, dict) or not ("detection" in doc or "correlation" in doc):
            out["skipped"].append(asdict(Skipped(path, None, "not a Sigma rule (no detection or correlation)")))
            continue
        label = str(doc.get("id") or doc.get("title") or "")
        ls = doc.get("logsource") or {}
        if "detection" in doc and ls.get("product") not in (None, "windows"):
            reason = f"not a Windows rule (logsource product: {ls.get('product')})"
            out["skipped"].append(asdict(Skipped(path, label, reason)))
            continue
        try:
            conv = _convert_doc(doc, path, be)
        except (SigmaError, ValueError, TypeError, KeyError, NotImplementedError) as e:
            out["skipped"].append(asdict(Skipped(path, label, f"{type(e).__name__}: {e}")))
            continue
        key = "correlations" if isinstance(conv, CorrelationSpec) else "rules"
        out[key].append(asdict(conv))
    return out


def load_rules(paths: Iterable[Path], use_cache: bool = True) -> RuleSet:
    """Load every rule file under `paths` (files or folders, recursive, sorted)."""
    rs = RuleSet()
    cache_file = _cache_path()
    cache: dict[str, Any] = {}
    if use_cache and cache_file.exists():
        try:
            cache = json.loads(cache_file.read_bytes())
        except (OSError, ValueError):
            cache = {}
    dirty = False
    be = DuckDBBackend()
    seen_ids: dict[str, str] = {}
    for f in iter_rule_files(paths, rs.skipped):
        try:
            data = f.read_bytes()
        except OSError as e:
            rs.skipped.append(Skipped(str(f), None, f"unreadable: {e.strerror or e}"))
            continue
        rs.files_read += 1
        digest = hashlib.sha256(data).hexdigest()
        entry = cache.get(digest)
        if entry is None:
            entry = _compile_file(data, str(f), be)
            cache[digest] = entry
            dirty = True
        for d in entry["rules"]:
            r = CompiledRule(**{**d, "path": str(f)})
            if r.rule_id in seen_ids:
                rs.skipped.append(Skipped(str(f), r.rule_id, f"duplicate rule id (also in {seen_ids[r.rule_id]})"))
                continue
            seen_ids[r.rule_id] = str(f)
            rs.rules.append(r)
        rs.correlations.extend(CorrelationSpec(**{**d, "path": str(f)}) for d in entry["correlations"])
        rs.skipped.extend(Skipped(**{**d, "path": str(f)}) for d in entry["skipped"])
    if use_cache and dirty:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache))
            tmp.replace(cache_file)
        except OSError:
            pass  # a read-only home only costs speed
    return rs
