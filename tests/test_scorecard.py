"""Scorecard arithmetic on a hand-made case small enough to check by eye."""

from __future__ import annotations

import json

from gridhunt.demo import format_scorecard, score

LABELS = [
    {
        "id": "S02-b",
        "title": "beta",
        "attack": ["T1003.001"],
        "evidence": [{"source_file": "windows/sysmon.jsonl", "source_ref": "line 7"}],
    },
    {
        "id": "S01-a",
        "title": "alpha",
        "attack": ["T1110.003"],
        "evidence": [
            {"source_file": "network/vpn.csv", "source_ref": "line 2"},
            {"source_file": "network/vpn.csv", "source_ref": "line 3"},
        ],
    },
    {
        "id": "S03-c",
        "title": "gamma",
        "attack": ["T1041"],
        "evidence": [{"source_file": "zeek/http.log", "source_ref": "line 9"}],
    },
]
ROOT = "/cases/x/evidence"
FINDINGS = [
    # true: catches S01-a through an absolute path and a bare line number
    {
        "finding_id": "F1",
        "title": "VPN spray",
        "evidence": [{"source_file": f"{ROOT}/network/vpn.csv", "source_ref": "3"}],
    },
    # true: catches S01-a and S02-b at once; evidence stored as JSON text, as in the findings table
    {
        "finding_id": "F2",
        "title": "Multi",
        "evidence": json.dumps(
            [
                {"source_file": f"{ROOT}/network/vpn.csv", "source_ref": "line 2"},
                {"source_file": f"{ROOT}/windows/sysmon.jsonl", "source_ref": "line 7"},
            ]
        ),
    },
    # false positives: two from one rule, one from another; a near miss (line 8) is still a miss
    {
        "finding_id": "F3",
        "title": "Beacon-ish",
        "evidence": [{"source_file": f"{ROOT}/zeek/http.log", "source_ref": "line 8"}],
    },
    {
        "finding_id": "F4",
        "title": "Beacon-ish",
        "evidence": [{"source_file": f"{ROOT}/zeek/conn.log", "source_ref": "line 9"}],
    },
    {"finding_id": "F5", "title": "Admin PsExec", "evidence": []},
]


def test_scorecard_arithmetic() -> None:
    card = score(LABELS, FINDINGS, ROOT)
    assert card["labels_total"] == 3
    assert card["labels_detected"] == 2 and card["labels_missed"] == 1
    assert card["recall"] == 2 / 3
    assert card["findings_total"] == 5 and card["findings_true"] == 2
    assert card["precision"] == 2 / 5
    assert card["false_positives"] == {
        "count": 3,
        "by_rule": [{"rule": "Beacon-ish", "count": 2}, {"rule": "Admin PsExec", "count": 1}],
    }
    assert [p["id"] for p in card["labels"]] == ["S01-a", "S02-b", "S03-c"]  # sorted by id
    a, b, c = card["labels"]
    assert a["detected"] and [x["finding_id"] for x in a["caught_by"]] == ["F1", "F2"]
    assert b["detected"] and b["caught_by"] == [{"finding_id": "F2", "title": "Multi"}]
    assert not c["detected"] and c["caught_by"] == []
    assert card["missed"] == ["S03-c"]


def test_scorecard_is_deterministic_and_order_independent() -> None:
    a = score(LABELS, FINDINGS, ROOT)
    b = score(list(reversed(LABELS)), FINDINGS, ROOT)
    assert a == b
    assert "recall 2/3" in format_scorecard(a)


def test_scorecard_paths_without_root_and_edge_cases() -> None:
    # No root: absolute paths fall back to the part after `/evidence/`; relative paths as they are.
    f = [
        {"finding_id": "F", "title": "t", "evidence": [["zeek/http.log", "line 9"]]},
        {
            "finding_id": "G",
            "title": "u",
            "evidence": [{"source_file": "/elsewhere/evidence/zeek/http.log", "source_ref": "Line 9"}],
        },
    ]
    card = score(LABELS, f)
    assert card["labels_detected"] == 1 and card["precision"] == 1.0
    empty = score(LABELS, [])
    assert empty["precision"] == 0.0 and empty["recall"] == 0.0 and empty["false_positives"]["count"] == 0
    assert score([], [])["recall"] == 0.0
