"""Figures, their baselines and targets, and the two outputs: a JSON document and a table.

A measurement is a named list of samples (one per repetition); a ``Comparison`` reads two of
them and reports the subject's median, the baseline's median, their ratio and the target.
Ratios are oriented so that above 1 is better for the subject: subject/baseline for "higher
is better" units (MiB/s, calls/s), baseline/subject for "lower is better" ones (ms, MiB).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Comparison:
    """One row of the table: a subject measurement against its baseline measurement.

    ``min_ratio`` is a target on the ratio (e.g. at least 1.2 times the reference);
    ``max_value`` a target on the subject's own median (e.g. at most 150 ms). Either, both or
    neither may be set.
    """

    figure: str
    subject: str
    baseline: str
    unit: str
    better: Better
    min_ratio: float | None = None
    max_value: float | None = None


@dataclass
class Results:
    """Samples gathered during a run, keyed by measurement name, plus run-wide facts."""

    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.samples[name].append(value)

    def median(self, name: str) -> float | None:
        values = self.samples.get(name)
        return statistics.median(values) if values else None


def ratio(subject: float, baseline: float, better: Better) -> float:
    """How many times better the subject is than the baseline (above 1: better)."""
    if better == "higher":
        return subject / baseline if baseline else float("inf")
    return baseline / subject if subject else float("inf")


def evaluate(results: Results, comparisons: list[Comparison]) -> list[dict[str, Any]]:
    """One JSON-ready row per comparison whose subject was measured."""
    rows: list[dict[str, Any]] = []
    for comparison in comparisons:
        subject = results.median(comparison.subject)
        baseline = results.median(comparison.baseline)
        if subject is None:
            continue
        row_ratio = None if baseline is None else ratio(subject, baseline, comparison.better)
        missed = []
        if comparison.min_ratio is not None and (
            row_ratio is None or row_ratio < comparison.min_ratio
        ):
            missed.append(f"ratio < {comparison.min_ratio}")
        if comparison.max_value is not None and subject > comparison.max_value:
            missed.append(f"value > {comparison.max_value}")
        rows.append(
            {
                "figure": comparison.figure,
                "subject": comparison.subject,
                "baseline": comparison.baseline,
                "unit": comparison.unit,
                "better": comparison.better,
                "subject_median": subject,
                "baseline_median": baseline,
                "ratio": row_ratio,
                "subject_samples": results.samples[comparison.subject],
                "baseline_samples": results.samples.get(comparison.baseline, []),
                "target_min_ratio": comparison.min_ratio,
                "target_max_value": comparison.max_value,
                "target_met": None if not _has_target(comparison) else not missed,
                "missed": missed,
            }
        )
    return rows


def _has_target(comparison: Comparison) -> bool:
    return comparison.min_ratio is not None or comparison.max_value is not None


def _target_text(row: dict[str, Any]) -> str:
    parts = []
    if row["target_min_ratio"] is not None:
        parts.append(f"≥ {row['target_min_ratio']:g}x")
    if row["target_max_value"] is not None:
        parts.append(f"≤ {row['target_max_value']:g} {row['unit']}")
    return ", ".join(parts) or "-"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the rows, missed targets marked "MISSED"."""
    lines = [
        "| figure | subject | baseline | unit | subject | baseline | ratio | target | met |",
        "|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        met = {None: "", True: "yes", False: "**MISSED**"}[row["target_met"]]
        ratio_text = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        lines.append(
            f"| {row['figure']} | {row['subject']} | {row['baseline']} | {row['unit']} | "
            f"{_number(row['subject_median'])} | {_number(row['baseline_median'])} | "
            f"{ratio_text} | {_target_text(row)} | {met} |"
        )
    return "\n".join(lines)
