from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from gridhunt.case import Case

REPO = Path(__file__).resolve().parents[1]
# CI lays ../shared beside the clone; real data is read from there, never copied.
SHARED = REPO.parent / "shared"
SAMPLES = SHARED / "evtx-samples"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"{SAMPLES} not present")
TEST_DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture
def case(tmp_path: Path) -> Iterator[Case]:
    c = Case.open(tmp_path / "c.duckdb")
    yield c
    c.close()


def data_files(*dirs: str) -> list[Path]:
    """Every file below tests/data/<dir> for each dir, in the order given."""
    return [p for d in dirs for p in (TEST_DATA / d).rglob("*") if p.is_file()]


def sniff_and_ingest(reader: ModuleType, case: Case, path: Path):
    fmt = reader.sniff(path.read_bytes()[:8192], path)
    assert fmt is not None, path
    return reader.ingest(case, path, fmt)


def rows(case: Case, sql: str, params: list | None = None) -> list[tuple]:
    return case.con.execute(sql, params or []).fetchall()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def run_analytic(case: Case, name: str, settings: dict | None = None):
    """Run the one analytic `name` with its default settings changed by `settings`; returns the
    AnalyticsResult after checking the analytic ran without an error."""
    from gridhunt.detect import run_analytics
    from gridhunt.detect.settings import load_settings

    s = load_settings()
    for k, v in (settings or {}).items():
        s[name][k] = v
    res = run_analytics(case, s, only=[name])
    (r,) = [r for r in res.runs if r.name == name]
    assert r.error is None, r.error
    return res
