"""Plots of a stored view are drawn once per artifact and read back by every later report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from zenml_collab.core.analysis import compute_statistics, detect_anomalies, infer_schema
from zenml_collab.core.analysis.errors import AnalysisError
from zenml_collab.core.analysis.plot_cache import PlotCache, Plotters, plot_cache_for
from zenml_collab.core.analysis.plots import drift_png, feature_png, slice_metrics_png
from zenml_collab.core.analysis.report import write_html_report

ARTIFACT = "ab" * 16


def counting(calls: Counter[str]) -> Plotters:
    """Plotters that draw for real and count each call by kind."""

    def count(kind: str, draw: Callable[..., bytes | None]) -> Callable[..., bytes | None]:
        def wrapped(*args: Any) -> bytes | None:
            calls[kind] += 1
            return draw(*args)

        return wrapped

    return Plotters(feature=count("feature", feature_png), drift=count("drift", drift_png),
                    slice_metrics=count("slices", slice_metrics_png))


@pytest.fixture(scope="module")
def checked(clean_split: tuple[pd.DataFrame, pd.DataFrame]) -> tuple[Any, Any]:
    train, evaluation = clean_split
    shifted = evaluation.copy()
    shifted["bmi"] = shifted["bmi"] + 8
    schema = infer_schema(train)
    stats = compute_statistics({"train": train, "eval": shifted}, schema=schema)
    return stats, detect_anomalies(schema, stats, shifted, range_tolerance=1.0)


def test_a_second_report_of_the_same_statistics_draws_no_plot(
        checked: tuple[Any, Any], tmp_path: Path) -> None:
    stats, _ = checked
    calls: Counter[str] = Counter()
    first = write_html_report(stats, tmp_path / "first.html",
                              plots=plot_cache_for(tmp_path, ARTIFACT, counting(calls)))
    drawn = calls["feature"]
    assert drawn == len(stats.feature_names)
    # Another cache object (as in a fresh process) over the same directory: nothing is drawn.
    second = write_html_report(stats, tmp_path / "second.html",
                               plots=plot_cache_for(tmp_path, ARTIFACT, counting(calls)))
    assert calls["feature"] == drawn
    assert second.read_text(encoding="utf-8") == first.read_text(encoding="utf-8")


def test_another_artifact_draws_its_own_plots(checked: tuple[Any, Any], tmp_path: Path) -> None:
    stats, _ = checked
    calls: Counter[str] = Counter()
    write_html_report(stats, tmp_path / "a.html",
                      plots=plot_cache_for(tmp_path, ARTIFACT, counting(calls)))
    write_html_report(stats, tmp_path / "b.html",
                      plots=plot_cache_for(tmp_path, "cd" * 16, counting(calls)))
    assert calls["feature"] == 2 * len(stats.feature_names)


def test_the_drift_plot_is_cached_per_checked_split(checked: tuple[Any, Any],
                                                    tmp_path: Path) -> None:
    _, anomalies = checked
    assert anomalies.drift
    calls: Counter[str] = Counter()
    cache = plot_cache_for(tmp_path, ARTIFACT, counting(calls))
    write_html_report(anomalies, tmp_path / "one.html", plots=cache)
    write_html_report(anomalies, tmp_path / "two.html", plots=cache)
    assert calls["drift"] == 1
    # The same artifact's check of another split is another plot.
    assert cache.drift(anomalies.drift, "test", "train") is not None
    assert calls["drift"] == 2


def test_without_a_cache_every_report_draws(checked: tuple[Any, Any], tmp_path: Path) -> None:
    stats, _ = checked
    calls: Counter[str] = Counter()
    cache = PlotCache(None, counting(calls))
    write_html_report(stats, tmp_path / "a.html", plots=cache)
    write_html_report(stats, tmp_path / "b.html", plots=cache)
    assert calls["feature"] == 2 * len(stats.feature_names)


def test_a_plot_with_nothing_to_draw_is_remembered_as_none(tmp_path: Path) -> None:
    calls: Counter[str] = Counter()

    def nothing(*_: Any) -> None:
        calls["drift"] += 1

    cache = plot_cache_for(tmp_path, ARTIFACT, Plotters(drift=nothing))
    assert cache.drift([]) is None and cache.drift([]) is None
    assert calls["drift"] == 1


def test_an_unwritable_cache_still_gives_the_plot(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    calls: Counter[str] = Counter()

    def png(*_: Any) -> bytes:
        calls["drift"] += 1
        return b"png"

    cache = PlotCache(blocker / "plots", Plotters(drift=png))
    assert cache.drift([]) == b"png" and cache.drift([]) == b"png"
    assert calls["drift"] == 2


def test_a_cache_key_that_is_not_a_content_hash_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="content hash"):
        plot_cache_for(tmp_path, "../../etc")
