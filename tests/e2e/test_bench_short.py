"""The benchmark suite's short mode runs end to end and reports every figure, so it never rots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.figures import FIGURES

REPOSITORY = Path(__file__).resolve().parents[2]
BUDGET_SECONDS = 150


@pytest.mark.embedded_only("the benchmarks measure the embedded default against the reference")
def test_short_benchmark_reports_every_figure(tmp_path: Path) -> None:
    """``python -m bench --short`` measures every row, subject and baseline, 3 times or more."""
    output = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--short", "--json", str(output)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=BUDGET_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    rows = {
        row["subject"] + " / " + row["baseline"]: row
        for row in json.loads(output.read_text())["figures"]
    }
    expected = {
        comparison.subject + " / " + comparison.baseline
        for _, comparisons in FIGURES.values()
        for comparison in comparisons
    }
    assert set(rows) == expected
    for name, row in rows.items():
        assert len(row["subject_samples"]) >= 3, name
        assert len(row["baseline_samples"]) >= 3, name
        assert row["ratio"] is not None, name
    assert "| figure |" in completed.stdout
