"""required_event_ids: which EventIDs a rule can match (the runner skips all other rows)."""

from __future__ import annotations

import pytest
import yaml
from sigma.rule import SigmaRule

from gridhunt.sigma.backend import required_event_ids


def _rule(detection: str) -> SigmaRule:
    doc = {"title": "t", "logsource": {"product": "windows", "service": "security"}}
    doc["detection"] = yaml.safe_load(detection)
    return SigmaRule.from_dict(doc)


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ("{sel: {EventID: 4624, LogonType: 3}, condition: sel}", [4624]),
        ("{sel: {EventID: [4624, 4625]}, condition: sel}", [4624, 4625]),
        ("{a: {EventID: 4624}, b: {EventID: 4625}, condition: a or b}", [4624, 4625]),
        ("{a: {EventID: [4624, 4625]}, b: {EventID: 4625}, condition: a and b}", [4625]),
        ("{a: {EventID: 4624}, b: {User: x}, condition: a or b}", None),  # b matches any EventID
        ("{a: {EventID: 4624}, condition: not a}", None),
        ("{a: {EventID: 4624}, f: {User: x}, condition: a and not f}", [4624]),
        ("{kw: [mimikatz], condition: kw}", None),
        ("{a: {EventID: '4688'}, condition: a}", [4688]),
    ],
)
def test_required_event_ids(detection: str, expected: list[int] | None) -> None:
    assert required_event_ids(_rule(detection)) == expected
