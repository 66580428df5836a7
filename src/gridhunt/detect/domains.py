"""Domain-name helpers for the DNS and exfiltration analytics.

- registered domain (eTLD+1) from the Public Suffix List snapshot bundled in `tldextract`
  (ICANN section): nothing is downloaded and no cache file is written. `split()` asks tldextract
  itself, name by name; `name_table()` applies the same snapshot's rules (`psl_rules()`) to every
  distinct name at once in DuckDB SQL, so a million distinct names cost a join, not a million
  Python calls (tests check both give the same answers);
- the shipped popularity list (data/popular_domains.txt, see data/README.md);
- Shannon entropy of strings (vectorised), and a character 3-gram model of benign names (add-one
  smoothing, mean natural-log probability per character) for DGA-likeness.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa

from gridhunt.sql import temp_table

POPULAR_FILE = "popular_domains.txt"
# what a label is made of after lower-casing; anything else is dropped before scoring
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-"
_START, _END = "^", "$"


@lru_cache(maxsize=1)
def _extractor() -> Any:
    import tldextract

    # suffix_list_urls=(): never fetch the live PSL (no network at run time);
    # cache_dir=None: never write tldextract's cache (the snapshot inside the wheel is used as is)
    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def psl_snapshot_version() -> str:
    """The `// VERSION:` line of the PSL snapshot tldextract ships (for reports and the README)."""
    import tldextract

    text = (resources.files(tldextract) / ".tld_set_snapshot").read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines()[:20]:
        if line.startswith("// VERSION:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def normalise(name: str) -> str:
    """How a DNS name is compared: lower case, no surrounding blanks, no trailing dot.
    The SQL twin is NORMALISE_SQL; both must agree."""
    return name.strip().rstrip(".").lower()


NORMALISE_SQL = "lower(rtrim(trim({col}), '.'))"


# TLDs used for internal names (RFC 6762 .local, RFC 8375 home.arpa, ICANN's .internal, and common
# private choices): names under them are never internet domains, whatever the PSL says
INTERNAL_TLDS = ("local", "localhost", "localdomain", "lan", "home", "corp", "internal", "intranet", "private")


def split(name: str) -> tuple[str | None, str, str, str]:
    """(registered domain or None, subdomain part, registrable label, public suffix) of a normalised
    name, by tldextract. A TLD the PSL does not know (.example in the demo, a TLD newer than the
    snapshot) gets the PSL's default rule `*`: its last label is the suffix (tldextract leaves such
    names without one). Single labels, IP addresses, internal TLDs (INTERNAL_TLDS) and reverse
    lookups (.arpa) have no registered domain: they are not internet domains."""
    r = _extractor().extract_str(name)
    if not r.suffix and "." in name:
        labels = name.split(".")
        if labels[-1] not in INTERNAL_TLDS and not labels[-1].isdigit() and labels[-1] and labels[-2]:
            return f"{labels[-2]}.{labels[-1]}", ".".join(labels[:-2]), labels[-2], labels[-1]
    reg = _registered(r.domain, r.suffix)
    return reg, r.subdomain if reg else "", r.domain, r.suffix


def _registered(domain: str, suffix: str) -> str | None:
    if not domain or not suffix or suffix == "arpa" or suffix.endswith(".arpa"):
        return None
    return f"{domain}.{suffix}"


def registered_domain(name: str) -> str | None:
    return split(normalise(name))[0]


def entropy(s: str) -> float:
    """Shannon entropy in bits per character (0 for the empty string)."""
    n = len(s)
    if n == 0:
        return 0.0
    return max(0.0, math.log2(n) - sum(c * math.log2(c) for c in Counter(s).values()) / n)


@lru_cache(maxsize=1)
def popular_domains() -> frozenset[str]:
    """The shipped popularity list: registered domains, comments (#) skipped."""
    text = (resources.files("gridhunt") / "data" / POPULAR_FILE).read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def popular_labels() -> list[str]:
    """Registrable labels of the popularity list (`google` of google.com), in file order, each once."""
    text = (resources.files("gridhunt") / "data" / POPULAR_FILE).read_text(encoding="utf-8")
    seen: dict[str, None] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            seen.setdefault(line.split(".", 1)[0], None)
    return list(seen)


def _clean(label: str) -> str:
    return "".join(ch for ch in label.lower() if ch in _ALPHABET)


class NgramModel:
    """Character n-gram model (default 3-grams) of benign registrable labels.

    score(label) = mean over the label's characters (and its end) of ln P(char | previous n-1),
    with add-one smoothing over the alphabet; pronounceable names score around -2, uniformly
    random letters/digits around -3.5."""

    def __init__(self, labels: Iterable[str], n: int = 3) -> None:
        self.n = n
        self.grams: Counter[str] = Counter()
        self.contexts: Counter[str] = Counter()
        self.vocab = len(_ALPHABET) + 1  # + the end marker
        for label in labels:
            s = _START * (n - 1) + _clean(label) + _END
            for i in range(n - 1, len(s)):
                self.grams[s[i - n + 1 : i + 1]] += 1
                self.contexts[s[i - n + 1 : i]] += 1
        self._cache: dict[str, float] = {}

    def score(self, label: str) -> float:
        hit = self._cache.get(label)
        if hit is not None:
            return hit
        n = self.n
        s = _START * (n - 1) + _clean(label) + _END
        steps = len(s) - (n - 1)
        total = 0.0
        for i in range(n - 1, len(s)):
            total += math.log((self.grams[s[i - n + 1 : i + 1]] + 1) / (self.contexts[s[i - n + 1 : i]] + self.vocab))
        out = total / steps
        self._cache[label] = out
        return out


@lru_cache(maxsize=1)
def benign_model() -> NgramModel:
    """The 3-gram model trained on every label of the shipped popularity list (built once, ~0.3 s)."""
    return NgramModel(popular_labels())


def dga_like(
    label: str, model: NgramModel, min_length: int, max_logprob: float, min_entropy: float, entropy_logprob: float
) -> bool:
    """A registrable label looks machine-generated when it is long enough to judge and either
    improbable under the benign 3-gram model (score < max_logprob), or both high in character
    entropy (>= min_entropy bits) and still unusual (score < entropy_logprob)."""
    clean = _clean(label)
    if len(clean) < min_length or clean.startswith("xn--"):  # punycode is judged on its own alphabet
        return False
    score = model.score(clean)
    return score < max_logprob or (entropy(clean) >= min_entropy and score < entropy_logprob)


def _symbols() -> np.ndarray:
    """Byte -> entropy symbol: DNS name characters their own (letters case-folded), others one shared."""
    lut = np.full(256, 63, dtype=np.int64)
    for i, ch in enumerate("abcdefghijklmnopqrstuvwxyz0123456789-_"):
        lut[ord(ch)] = lut[ord(ch.upper())] = i
    return lut


_LUT = _symbols()


def entropies(strings: Sequence[str], chunk: int = 32768) -> np.ndarray:
    """Shannon entropy (bits per character) of each string, as `entropy` for DNS names (letters
    case-folded; characters outside a-z 0-9 - _ count as one symbol); 0 for empty strings.
    Vectorised: per chunk one bincount over (string, symbol)."""
    n = len(strings)
    out = np.zeros(n)
    for lo in range(0, n, chunk):
        part = [x.encode("utf-8", "replace") for x in strings[lo : lo + chunk]]
        m = len(part)
        lengths = np.fromiter((len(x) for x in part), dtype=np.int64, count=m)
        if not lengths.any():
            continue
        codes = _LUT[np.frombuffer(b"".join(part), dtype=np.uint8)]
        ids = np.repeat(np.arange(m, dtype=np.int64), lengths)
        counts = np.bincount(ids * 64 + codes, minlength=m * 64).reshape(m, 64).astype(np.float64)
        p = counts / np.maximum(lengths, 1)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
        out[lo : lo + m] = np.maximum(-terms.sum(axis=1), 0.0)
    return out


@lru_cache(maxsize=1)
def psl_rules() -> tuple[tuple[str, int], ...]:
    """The ICANN rules of tldextract's bundled PSL snapshot as (rule, kind): kind 0 a public
    suffix, 1 a wildcard `*.X` (X stored), 2 an exception `!Y` (Y stored). Internationalised
    rules are listed in Unicode and again in punycode, the form DNS queries carry."""
    out: dict[tuple[str, int], None] = {}
    tlds = _extractor().tlds  # a property in tldextract >= 5.2, a method before
    for rule in tlds() if callable(tlds) else tlds:
        kind = 1 if rule.startswith("*.") else 2 if rule.startswith("!") else 0
        body = rule[2:] if kind == 1 else rule[1:] if kind == 2 else rule
        out[(body.lower(), kind)] = None
        if not body.isascii():
            try:
                out[(body.encode("idna").decode("ascii").lower(), kind)] = None
            except UnicodeError:
                continue  # a label Python's IDNA 2003 codec refuses: no punycode twin
    return tuple(out)


def _psl_table(con: Any) -> int:
    """Temp table gh_psl(rule, kind) from psl_rules(); returns the deepest rule + 1 (labels to look at)."""
    rules = psl_rules()
    tbl = pa.table({"rule": [r for r, _ in rules], "kind": pa.array([k for _, k in rules], pa.int8())})
    temp_table(con, "gh_psl", tbl)
    return max(r.count(".") + 1 + (k == 1) for r, k in rules)


def name_table(con: Any, table: str, names_sql: str, params: Sequence[Any] = ()) -> int:
    """CREATE TEMP TABLE `table` (name, registered, sub, label, suffix) for the distinct, normalised
    names that `names_sql` returns in a column `name`; returns the row count.

    PSL algorithm (as tldextract applies it): the public suffix is the longest matching rule, a
    wildcard `*.X` matching one more label below X, an exception `!Y` making Y's parent the suffix;
    no matching rule means the default rule `*` (the last label), as in `split`. Single labels, IP
    addresses, internal TLDs and reverse lookups under .arpa get no registered domain."""
    depth = _psl_table(con)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
        WITH n AS (
            SELECT DISTINCT name, string_split(name, '.') AS l FROM ({names_sql}) WHERE name IS NOT NULL AND name <> ''
        ), t AS (
            SELECT n.name, len(n.l) AS nl, k.k, array_to_string(n.l[len(n.l) - k.k + 1:], '.') AS tail
            FROM n JOIN (SELECT unnest(range(1, {depth + 1})) AS k) k ON k.k <= len(n.l)
        ), m AS (
            SELECT t.name,
                max(CASE WHEN p.kind = 0 THEN t.k WHEN p.kind = 1 AND t.nl > t.k THEN t.k + 1 END) AS s_rule,
                max(CASE WHEN p.kind = 2 THEN t.k - 1 END) AS s_exc
            FROM t JOIN gh_psl p ON p.rule = t.tail GROUP BY t.name
        ), s AS (
            SELECT n.name, n.l, len(n.l) AS nl,
                coalesce(m.s_exc, m.s_rule, CASE WHEN len(n.l) >= 2 AND n.l[-1] <> '' AND n.l[-2] <> ''
                    AND NOT list_contains(?::VARCHAR[], n.l[-1]) AND NOT regexp_full_match(n.l[-1], '[0-9]+')
                    THEN 1 ELSE 0 END) AS s
            FROM n LEFT JOIN m USING (name)
        ), r AS (
            SELECT name, l, nl, s, array_to_string(l[nl - s + 1:], '.') AS suffix FROM s
        )
        SELECT name,
            CASE WHEN s >= 1 AND nl > s AND suffix <> 'arpa' AND NOT ends_with(suffix, '.arpa')
                 THEN array_to_string(l[nl - s:], '.') END AS registered,
            CASE WHEN nl > s + 1 THEN array_to_string(l[1:nl - s - 1], '.') ELSE '' END AS sub,
            CASE WHEN nl > s THEN l[nl - s] ELSE '' END AS label,
            CASE WHEN s >= 1 THEN suffix ELSE '' END AS suffix
        FROM r""",
        [*params, list(INTERNAL_TLDS)],
    )
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
