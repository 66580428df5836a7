"""Sigma detection → DuckDB SQL, pinned as input → expected pairs (like sqlglot's dialect tests).

A change in the generated SQL shows up here as a readable diff. Matching behaviour is proven end to end
in test_sigma_modifiers.py; this file is about the exact text. Expected SQL is written over several lines
for reading: lines are joined with single spaces before comparing.
"""

from __future__ import annotations

import textwrap
from typing import NamedTuple

import pytest
import yaml
from sigma.policy.profiles import TrustedPolicy
from sigma.rule import SigmaRule

from gridhunt.sigma.backend import DuckDBBackend


class Case(NamedTuple):
    name: str
    why: str
    detection: str  # the rule's `detection:` block
    sql: str
    fields: list[str]


CASES: list[Case] = [
    Case(
        "contains",
        "Values match case-insensitively against the pre-lowered column.",
        r"""
        selection:
            CommandLine|contains: 'MimiKatz'
        condition: selection
        """,
        r"""
        coalesce(contains("CommandLine#lower", 'mimikatz'), false)
        """,
        ["CommandLine", "CommandLine#lower"],
    ),
    Case(
        "startswith-endswith",
        "Single backslashes are literal.",
        r"""
        selection:
            Image|startswith: 'C:\Windows\'
            ParentImage|endswith: '\cmd.exe'
        condition: selection
        """,
        r"""
        coalesce(starts_with("Image#lower", 'c:\windows\'), false) AND
        coalesce(suffix("ParentImage#lower", '\cmd.exe'), false)
        """,
        ["Image", "Image#lower", "ParentImage", "ParentImage#lower"],
    ),
    Case(
        "wildcards-in-the-middle",
        "LIKE: % and _ from the value are escaped, a doubled backslash before * is one backslash.",
        r"""
        selection:
            Image: 'C:\Users\\*\50%_?.exe'
        condition: selection
        """,
        r"""
        coalesce("Image#lower" LIKE 'c:\\users\\%\\50\%\__.exe' ESCAPE '\', false)
        """,
        ["Image", "Image#lower"],
    ),
    Case(
        "lone-wildcard",
        "A lone * means any present value.",
        r"""
        selection:
            Image: '*'
        condition: selection
        """,
        r"""
        ("Image" IS NOT NULL)
        """,
        ["Image", "Image#lower"],
    ),
    Case(
        "list-as-in",
        "Plain values and numbers of one field become one IN list.",
        r"""
        selection:
            User:
                - 'Alice'
                - 'BOB'
                - 4624
        condition: selection
        """,
        r"""
        coalesce("User#lower" IN ('alice', 'bob', '4624'), false)
        """,
        ["User", "User#lower"],
    ),
    Case(
        "list-with-escaped-wildcards",
        "Escaped wildcards are literal inside IN; quotes are doubled.",
        r"""
        selection:
            User:
                - 'a\*b'
                - 'c\?d'
                - 'e\\f'
                - 'it''s'
        condition: selection
        """,
        r"""
        coalesce("User#lower" IN ('a*b', 'c?d', 'e\f', 'it''s'), false)
        """,
        ["User", "User#lower"],
    ),
    Case(
        "cased-list",
        "A cased list is a case-sensitive IN over the raw column.",
        r"""
        selection:
            User|cased:
                - 'Alice'
                - 'BOB'
        condition: selection
        """,
        r"""
        coalesce("User" IN ('Alice', 'BOB'), false)
        """,
        ["User"],
    ),
    Case(
        "long-contains-list",
        "Ten or more contains values: one RE2 alternation with the values regex-escaped.",
        r"""
        selection:
            CommandLine|contains:
                - 'v0.'
                - 'v1.'
                - 'v2.'
                - 'v3.'
                - 'v4.'
                - 'v5.'
                - 'v6.'
                - 'v7.'
                - 'v8.'
                - 'v9('
        condition: selection
        """,
        r"""
        coalesce(regexp_matches("CommandLine#lower", '(?s)v0\.|v1\.|v2\.|v3\.|v4\.|v5\.|v6\.|v7\.|v8\.|v9\('), false)
        """,
        ["CommandLine", "CommandLine#lower"],
    ),
    Case(
        "re-flags",
        "re is case-sensitive; i, m, s become inline flags.",
        r"""
        selection:
            CommandLine|re|i|m|s: '^a.b$'
        condition: selection
        """,
        r"""
        coalesce(regexp_matches("CommandLine", '(?sim)^a.b$'), false)
        """,
        ["CommandLine"],
    ),
    Case(
        "re-python-fallback",
        "Look-around is not RE2: Python's re via gh_pyregex (rule parsed with TrustedPolicy).",
        r"""
        selection:
            CommandLine|re: 'net\s+user(?!\s+/domain)'
        condition: selection
        """,
        r"""
        coalesce(gh_pyregex("CommandLine", 'net\s+user(?!\s+/domain)'), false)
        """,
        ["CommandLine"],
    ),
    Case(
        "cidr",
        "CIDR values expand to prefixes (or addresses); each CIDR is one group.",
        r"""
        selection:
            IpAddress|cidr:
                - '10.0.0.0/8'
                - '192.168.1.0/31'
        condition: selection
        """,
        r"""
        (coalesce(starts_with("IpAddress#lower", '10.'), false)) OR
        (coalesce("IpAddress#lower" IN ('192.168.1.0', '192.168.1.1'), false))
        """,
        ["IpAddress", "IpAddress#lower"],
    ),
    Case(
        "cidr-and",
        "A CIDR spanning two prefixes stays grouped below AND.",
        r"""
        selection:
            EventID: 4624
            IpAddress|cidr: '10.0.0.0/23'
        condition: selection
        """,
        r"""
        coalesce("EventID" = '4624', false) AND (coalesce(starts_with("IpAddress#lower", '10.0.0.'), false) OR
        coalesce(starts_with("IpAddress#lower", '10.0.1.'), false))
        """,
        ["EventID", "IpAddress", "IpAddress#lower"],
    ),
    Case(
        "windash-not-filter",
        "NOT negates every windash variant (not just the first).",
        r"""
        selection:
            EventID: 4688
        filter:
            CommandLine|windash|contains: ' -x'
        condition: selection and not filter
        """,
        r"""
        coalesce("EventID" = '4688', false) AND NOT (coalesce(contains("CommandLine#lower", ' -x'), false) OR
        coalesce(contains("CommandLine#lower", ' /x'), false) OR
        coalesce(contains("CommandLine#lower", ' –x'), false) OR
        coalesce(contains("CommandLine#lower", ' —x'), false) OR
        coalesce(contains("CommandLine#lower", ' ―x'), false))
        """,
        ["CommandLine", "CommandLine#lower", "EventID"],
    ),
    Case(
        "base64offset",
        "Three offsets, one group.",
        r"""
        selection:
            CommandLine|base64offset|contains: 'http'
        condition: selection
        """,
        r"""
        (coalesce(contains("CommandLine#lower", 'ahr0c'), false) OR
        coalesce(contains("CommandLine#lower", 'h0dh'), false) OR
        coalesce(contains("CommandLine#lower", 'odhrw'), false))
        """,
        ["CommandLine", "CommandLine#lower"],
    ),
    Case(
        "exists",
        "exists true / false.",
        r"""
        selection:
            ParentImage|exists: true
            ParentUser|exists: false
        condition: selection
        """,
        r"""
        ("ParentImage" IS NOT NULL) AND ("ParentUser" IS NULL)
        """,
        ["ParentImage", "ParentUser"],
    ),
    Case(
        "null",
        "null: absent or empty.",
        r"""
        selection:
            ParentImage: null
        condition: selection
        """,
        r"""
        coalesce("ParentImage", '') = ''
        """,
        ["ParentImage"],
    ),
    Case(
        "fieldref",
        "Field references, plain and with contains.",
        r"""
        selection:
            TargetUserName|fieldref: SubjectUserName
            CommandLine|fieldref|contains: TargetFilename
        condition: selection
        """,
        r"""
        coalesce("TargetUserName#lower" = "SubjectUserName#lower", false) AND
        coalesce(contains("CommandLine#lower", "TargetFilename#lower"), false)
        """,
        [
            "CommandLine",
            "CommandLine#lower",
            "SubjectUserName",
            "SubjectUserName#lower",
            "TargetFilename",
            "TargetFilename#lower",
            "TargetUserName",
            "TargetUserName#lower",
        ],
    ),
    Case(
        "compare",
        "Numeric comparisons over the VARCHAR columns.",
        r"""
        selection:
            Count|gt: 5
            Ratio|lte: 2.5
        condition: selection
        """,
        r"""
        coalesce(TRY_CAST("Count" AS DOUBLE) > 5, false) AND
        coalesce(TRY_CAST("Ratio" AS DOUBLE) <= 2.5, false)
        """,
        ["Count", "Ratio"],
    ),
    Case(
        "timestamp-parts",
        "Timestamp parts, as equality and as comparison.",
        r"""
        selection:
            UtcTime|hour: 3
            UtcTime|minute|gte: 30
        condition: selection
        """,
        r"""
        coalesce(date_part('hour', TRY_CAST("UtcTime" AS TIMESTAMP)) = 3, false) AND
        coalesce(date_part('minute', TRY_CAST("UtcTime" AS TIMESTAMP)) >= 30, false)
        """,
        ["UtcTime"],
    ),
    Case(
        "number-and-bool",
        "Numbers compare as text; booleans as 'true' / 'false'.",
        r"""
        selection:
            EventID: 4624
            Enabled: true
        condition: selection
        """,
        r"""
        coalesce("EventID" = '4624', false) AND coalesce("Enabled#lower" = 'true', false)
        """,
        ["Enabled", "Enabled#lower", "EventID"],
    ),
    Case(
        "keywords",
        "Keywords search gh_fulltext; a bare keyword matches anywhere.",
        r"""
        keywords:
            - 'sekurlsa'
            - 'evil*tool'
        condition: keywords
        """,
        r"""
        coalesce(contains("gh_fulltext#lower", 'sekurlsa'), false) OR
        coalesce("gh_fulltext#lower" LIKE '%evil%tool%' ESCAPE '\', false)
        """,
        ["gh_fulltext", "gh_fulltext#lower"],
    ),
    Case(
        "expand",
        "Placeholders join gh_placeholders; a wildcard after the placeholder.",
        r"""
        selection:
            TargetUserName|expand|startswith: '%admins%'
        condition: selection
        """,
        r"""
        EXISTS (SELECT 1 FROM gh_placeholders p WHERE p.name = 'admins' AND
        coalesce("TargetUserName#lower" LIKE gh_like_escape(p.v) || '%' ESCAPE '\', false))
        """,
        ["TargetUserName", "TargetUserName#lower"],
    ),
    Case(
        "expand-in-list",
        "A placeholder is never put into an IN list.",
        r"""
        selection:
            TargetUserName|expand:
                - '%admins%'
                - 'guest'
        condition: selection
        """,
        r"""
        EXISTS (SELECT 1 FROM gh_placeholders p WHERE p.name = 'admins' AND
        coalesce("TargetUserName#lower" LIKE gh_like_escape(p.v) ESCAPE '\', false)) OR
        coalesce("TargetUserName#lower" = 'guest', false)
        """,
        ["TargetUserName", "TargetUserName#lower"],
    ),
]


def convert(detection: str, trusted: bool = False) -> tuple[str, list[str], bool]:
    doc = {
        "title": "t",
        "logsource": {"product": "windows", "service": "security"},
        "detection": yaml.safe_load(textwrap.dedent(detection)),
    }
    rule = SigmaRule.from_dict(doc, policy=TrustedPolicy if trusted else None)
    expr, fields, python_regex = DuckDBBackend().rule_expression(rule)
    return expr, sorted(fields), python_regex


def one_line(sql: str) -> str:
    return " ".join(line.strip() for line in sql.strip().splitlines())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_sql(case: Case) -> None:
    expr, fields, python_regex = convert(case.detection, trusted=case.name == "re-python-fallback")
    assert expr == one_line(case.sql), case.why
    assert fields == case.fields
    assert python_regex == (case.name == "re-python-fallback")


def test_backend_is_reusable_between_rules() -> None:
    """rule_expression resets the fields and the Python-regex flag for each rule."""
    be = DuckDBBackend()
    doc = {"title": "t", "logsource": {"product": "windows", "service": "security"}}
    first = SigmaRule.from_dict({**doc, "detection": {"s": {"A|re": "x(?=y)"}, "condition": "s"}}, policy=TrustedPolicy)
    second = SigmaRule.from_dict({**doc, "detection": {"s": {"B": "x"}, "condition": "s"}})
    assert be.rule_expression(first)[1:] == (frozenset({"A"}), True)
    assert be.rule_expression(second)[1:] == (frozenset({"B", "B#lower"}), False)


def test_utf16le_is_known() -> None:
    """The spec's `utf16le` (pySigma 2.0.1 only knows its alias `wide`) converts like `wide`."""
    utf16le = convert("selection:\n    Payload|utf16le|contains: 'ab'\ncondition: selection")[0]
    wide = convert("selection:\n    Payload|wide|contains: 'ab'\ncondition: selection")[0]
    assert utf16le == wide == "coalesce(contains(\"Payload#lower\", 'a\x00b\x00'), false)"


def test_several_placeholders_in_one_value_are_refused() -> None:
    with pytest.raises(ValueError, match="one placeholder"):
        convert("selection:\n    A|expand: '%a%%b%'\ncondition: selection")
