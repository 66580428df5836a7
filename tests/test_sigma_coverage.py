"""Every Windows rule of the SigmaHQ snapshot converts, and the packaged copy is that same set."""

from __future__ import annotations

from pathlib import Path

import yaml

from gridhunt.sigma.ruleset import load_rules, packaged_rule_dirs

FOLDERS = ("rules", "rules-emerging-threats", "rules-threat-hunting", "rules-compliance", "rules-placeholder")


def _windows_rule_files(shared: Path) -> list[Path]:
    out = []
    for folder in FOLDERS:
        for f in sorted((shared / "sigma" / folder).rglob("*.yml")):
            doc = yaml.load(f.read_bytes(), Loader=yaml.CSafeLoader)
            if (doc.get("logsource") or {}).get("product") == "windows":
                out.append(f)
    return out


def test_every_windows_rule_converts(shared: Path) -> None:
    files = _windows_rule_files(shared)
    assert len(files) == 2872  # 2,858 outside rules-placeholder + 14 placeholder rules
    rs = load_rules([shared / "sigma" / f for f in FOLDERS])
    windows_skips = [s for s in rs.skipped if not s.reason.startswith("not a Windows rule")]
    assert windows_skips == []
    windows = [r for r in rs.rules if r.logsource.get("product") == "windows"]
    assert len(windows) == 2872
    # keyword (full-text) rules and placeholder rules are among them
    assert sum(1 for r in windows if "gh_fulltext" in r.fields) >= 17
    assert sum(1 for r in windows if "gh_placeholders" in r.expr) >= 14
    # what has no Windows event log source is said, not hidden: EDR-only file_access / file_rename
    unmapped = sorted({r.logsource.get("category") for r in rs.unmapped if r in windows})
    assert unmapped == ["file_access", "file_rename"]


def test_packaged_rules_are_the_snapshot(shared: Path) -> None:
    # the SigmaHQ copy only: our own pack ships beside it (tests/test_rules_gridhunt.py)
    shipped = load_rules([d for d in packaged_rule_dirs() if d.name == "sigmahq"])
    snapshot = load_rules(_windows_rule_files(shared))
    assert sorted(r.rule_id for r in shipped.rules) == sorted(r.rule_id for r in snapshot.rules)
    # DRL 1.1: the licence and every rule's author travel with the rules
    assert (packaged_rule_dirs()[0] / "LICENSE.Detection.Rules.md").is_file()
    assert all(r.author for r in shipped.rules if "sigmahq" in r.path)


def test_broken_rules_are_skipped_with_reason(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text(
        "title: t\nid: 11111111-1111-1111-1111-111111111111\nlogsource: {product: windows, service: security}\n"
        "detection: {sel: {EventID: 4624}, condition: sel}\nlevel: low\n"
    )
    (tmp_path / "broken.yml").write_text("title: x\ndetection: [unclosed\n")
    (tmp_path / "nocond.yml").write_text(
        "title: y\nid: 22222222-2222-2222-2222-222222222222\nlogsource: {product: windows, service: security}\n"
        "detection: {sel: {EventID: 1}}\n"
    )
    (tmp_path / "notes.yml").write_text("just: a mapping\n")
    rs = load_rules([tmp_path, tmp_path / "missing.yml"], use_cache=False)
    assert [r.rule_id for r in rs.rules] == ["11111111-1111-1111-1111-111111111111"]
    reasons = {Path(s.path).name: s.reason for s in rs.skipped}
    assert reasons["broken.yml"].startswith("broken YAML: line 3")
    assert "condition" in reasons["nocond.yml"].lower()
    assert reasons["notes.yml"].startswith("not a Sigma rule")
    assert reasons["missing.yml"] == "no such file or folder"
