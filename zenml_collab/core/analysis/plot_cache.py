"""The PNG plots of one stored view, made once and kept on this machine.

A stored view (statistics, anomalies, an evaluation) never changes: its artifact is
content-addressed. So the plots of its HTML report are drawn once and kept in a directory named
after the artifact's content hash (``.collab/plots/<hash>/``); the next report of the same
artifact, by this member, in any process, reads them back instead of drawing (matplotlib is not
even imported).

Plot files are named by a hash of what they show (the kind and the feature or column name), so
a name read from a teammate's store never becomes a path. A plot that has nothing to draw is
kept as an empty file. Writes go to a temporary name and are renamed into place, so two
processes drawing the same plot at once both end with the same complete file.

Example::

    >>> cache = PlotCache(repo_root / ".collab" / "plots" / ref.hash)
    >>> write_html_report(statistics, "stats.html", plots=cache)   # draws
    >>> write_html_report(statistics, "again.html", plots=cache)   # draws nothing
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenml_collab.core.analysis.errors import AnalysisError

if TYPE_CHECKING:
    from zenml_collab.core.analysis.anomalies import DriftScore
    from zenml_collab.core.analysis.evaluation import Evaluation
    from zenml_collab.core.analysis.statistics import FeatureStatistics

__all__ = ["PLOTS_DIR", "PlotCache", "Plotters", "plot_cache_for"]

PLOTS_DIR = Path(".collab") / "plots"
"""Where a repository keeps the plots of its members' reports, one directory per artifact."""

_HASH = re.compile(r"[0-9a-f]{32,64}")


def _feature_png(name: str, per_split: Sequence[tuple[str, FeatureStatistics]]) -> bytes | None:
    from zenml_collab.core.analysis.plots import feature_png

    return feature_png(name, per_split)


def _drift_png(scores: Sequence[DriftScore]) -> bytes | None:
    from zenml_collab.core.analysis.plots import drift_png

    return drift_png(scores)


def _slice_metrics_png(evaluation: Evaluation, column: str) -> bytes | None:
    from zenml_collab.core.analysis.plots import slice_metrics_png

    return slice_metrics_png(evaluation, column)


@dataclass(frozen=True)
class Plotters:
    """The functions that draw; a test passes counting ones to see what was drawn."""

    feature: Callable[[str, Sequence[tuple[str, Any]]], bytes | None] = _feature_png
    drift: Callable[[Sequence[Any]], bytes | None] = _drift_png
    slice_metrics: Callable[[Any, str], bytes | None] = _slice_metrics_png


@dataclass(frozen=True)
class PlotCache:
    """Plots of one artifact in ``directory``; ``None`` keeps nothing (every plot is drawn)."""

    directory: Path | None = None
    plotters: Plotters = field(default_factory=Plotters)

    def feature(self, name: str, per_split: Sequence[tuple[str, Any]]) -> bytes | None:
        return self._get(("feature", name), lambda: self.plotters.feature(name, per_split))

    def drift(self, scores: Sequence[Any], split: str = "", baseline: str = "") -> bytes | None:
        # One anomalies artifact holds the check of every split: the key names which.
        return self._get(("drift", split, baseline), lambda: self.plotters.drift(scores))

    def slice_metrics(self, evaluation: Any, column: str) -> bytes | None:
        return self._get(("slices", column),
                         lambda: self.plotters.slice_metrics(evaluation, column))

    def _get(self, key: tuple[str, ...], draw: Callable[[], bytes | None]) -> bytes | None:
        if self.directory is None:
            return draw()
        path = self.directory / (hashlib.sha256("\0".join(key).encode("utf-8")).hexdigest()[:32]
                                 + ".png")
        try:
            data = path.read_bytes()
        except OSError:
            pass  # not drawn yet (or unreadable: drawn again, never an error)
        else:
            return data or None
        png = draw()
        self._keep(path, png or b"")
        return png

    def _keep(self, path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            pass  # a read-only checkout still gets its report, drawn each time


def plot_cache_for(root: Path, content_hash: str, plotters: Plotters | None = None) -> PlotCache:
    """The plot cache of the artifact with ``content_hash`` in repository ``root``."""
    if not _HASH.fullmatch(content_hash):
        raise AnalysisError(f"not an artifact content hash: {content_hash[:80]!r}",
                            hint="plots are cached per stored artifact (hex digits)")
    return PlotCache(root / PLOTS_DIR / content_hash, plotters or Plotters())
