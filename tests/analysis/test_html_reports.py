"""write_html_report: one self-contained file per value, with its plots; and it renders."""

from __future__ import annotations

import base64
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from zenml_collab.core.analysis import (
    Anomalies,
    Evaluation,
    Schema,
    Statistics,
    compute_statistics,
    detect_anomalies,
    evaluate,
    infer_schema,
    write_html_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXTERNAL = re.compile(r"""(?:src|href|url)\s*[=(]\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def values(
    clean_split: tuple[pd.DataFrame, pd.DataFrame], predictions: Any
) -> dict[str, Schema | Statistics | Anomalies | Evaluation]:
    train, evaluation = clean_split
    broken = evaluation.copy()
    broken.loc[0, "clinic"] = "mars"
    broken["bmi"] = broken["bmi"] + 8
    schema = infer_schema(train)
    stats = compute_statistics({"train": train, "eval": broken}, schema=schema)
    return {
        "schema": schema,
        "statistics": stats,
        "anomalies": detect_anomalies(schema, stats, broken, range_tolerance=1.0),
        "evaluation": evaluate(
            predictions.y_true,
            predictions.y_pred,
            predictions.y_proba[:, 1],
            slices=predictions.eval_frame,
            slice_columns=["clinic", "pregnancies"],
        ),
    }


@pytest.fixture(scope="module")
def reports(values: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("reports")
    return {
        name: write_html_report(value, folder / "nested" / f"{name}.html", title=f"{name} report")
        for name, value in values.items()
    }


def images(text: str) -> list[bytes]:
    """The PNG bytes of every embedded ``<img>``; fails on an image that is not inline."""
    tags = re.findall(r"<img\b[^>]*>", text)
    found = []
    for tag in tags:
        match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', tag)
        assert match, f"image not embedded: {tag[:80]}"
        found.append(base64.b64decode(match.group(1)))
    return found


@pytest.mark.parametrize("name", ["schema", "statistics", "anomalies", "evaluation"])
def test_each_report_is_one_self_contained_html_file(reports: dict[str, Path], name: str) -> None:
    path = reports[name]
    text = path.read_text(encoding="utf-8")

    assert path.name == f"{name}.html" and path.is_file()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert f"<title>{name} report</title>" in text
    assert not EXTERNAL.search(text)
    assert "<script" not in text and "<link" not in text
    assert [p for p in path.parent.iterdir() if p != path and p.suffix != ".html"] == []
    for png in images(text):
        assert png.startswith(PNG_SIGNATURE) and len(png) > 1000


def test_schema_report_lists_every_feature_and_domain(
    reports: dict[str, Path], values: dict[str, Any]
) -> None:
    text = reports["schema"].read_text()
    for feature in values["schema"]:
        assert f"<td>{feature.name}</td>" in text
    assert "{campus, harbor, north, south}" in text


def test_statistics_report_has_one_histogram_per_feature(
    reports: dict[str, Path], values: dict[str, Any]
) -> None:
    text = reports["statistics"].read_text()
    stats: Statistics = values["statistics"]

    assert len(images(text)) == len(stats.feature_names)
    for feature in stats.feature_names:
        assert f'alt="distribution of {feature}"' in text
    assert "Split train" in text and "Split eval" in text


def test_anomalies_report_plots_drift_and_lists_findings(
    reports: dict[str, Path], values: dict[str, Any]
) -> None:
    text = reports["anomalies"].read_text()
    anomalies: Anomalies = values["anomalies"]

    assert {(a.feature, a.kind) for a in anomalies} == {
        ("clinic", "out_of_domain"),
        ("bmi", "drift"),
    }
    assert len(images(text)) == 1 and 'alt="drift distance per feature"' in text
    assert "out_of_domain" in text and "&#x27;mars&#x27;" in text


def test_clean_anomalies_report_says_no_anomalies_found(
    clean_split: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, evaluation = clean_split
    schema = infer_schema(train)
    stats = compute_statistics({"train": train, "eval": evaluation}, schema=schema)

    path = write_html_report(detect_anomalies(schema, stats, evaluation), tmp_path / "a.html")

    assert "No anomalies found" in path.read_text()


def test_evaluation_report_plots_metrics_by_each_slice_column(
    reports: dict[str, Path], values: dict[str, Any]
) -> None:
    text = reports["evaluation"].read_text()

    assert len(images(text)) == 2
    assert 'alt="metrics by clinic"' in text and 'alt="metrics by pregnancies"' in text
    assert "<td>clinic=north</td>" in text


def test_writing_a_report_again_replaces_it_and_leaves_no_temporary_files(
    values: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "schema.html"
    path.write_text("old")
    write_html_report(values["schema"], path)
    assert path.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["schema.html"]


@pytest.mark.chromium
@pytest.mark.parametrize("name", ["schema", "statistics", "anomalies", "evaluation"])
def test_report_renders_in_headless_chromium(
    reports: dict[str, Path], name: str, tmp_path: Path
) -> None:
    chromium = os.environ.get("COLLAB_TEST_CHROMIUM")
    if not chromium:
        pytest.skip("COLLAB_TEST_CHROMIUM is not set (scripts/test exports the chromium path)")
    import numpy as np
    from matplotlib import image

    screenshot = tmp_path / f"{name}.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={screenshot}",
            "--window-size=1200,1600",
            reports[name].as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )

    assert screenshot.stat().st_size > 0
    pixels = image.imread(screenshot)
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    # Text alone anti-aliases into dozens of shades; the plots add their palette.
    assert len(colours) > (20 if name == "schema" else 50)
