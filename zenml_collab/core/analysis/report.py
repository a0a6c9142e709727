"""Self-contained HTML reports of the four analysis values.

One file, no network: CSS inline, plots embedded as base64 PNG ``<img>`` tags, so a report opens
the same from a laptop, a CI artifact or an email attachment.
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from zenml_collab.core.analysis.render import format_number, plural

if TYPE_CHECKING:
    from zenml_collab.core.analysis.anomalies import Anomalies
    from zenml_collab.core.analysis.evaluation import Evaluation
    from zenml_collab.core.analysis.plot_cache import PlotCache
    from zenml_collab.core.analysis.schema import Schema
    from zenml_collab.core.analysis.statistics import Statistics

__all__ = ["report_html", "write_html_report"]

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       margin: 2rem auto; max-width: 1100px; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2rem; font-size: 1.2rem; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #ddd; padding: .3rem .7rem; text-align: left; }
th { background: #f4f5f7; } td.num { text-align: right; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1rem; }
img { max-width: 100%; border: 1px solid #eee; border-radius: 4px; }
.ok { color: #0a7d33; font-weight: 600; } .error { color: #b3261e; font-weight: 600; }
.warning { color: #9a6700; font-weight: 600; }
"""


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(header: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    """An HTML table; cells are escaped here, so callers pass plain text."""
    numeric = numeric or set()
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{html.escape(c)}</td>'
            if i in numeric
            else f"<td>{html.escape(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _schema_body(schema: Schema) -> str:
    rows = []
    for f in schema:
        if f.categories is not None:
            domain = "{" + ", ".join(f.categories) + "}"
        elif f.value_range is not None:
            domain = f"[{format_number(f.value_range[0])}, {format_number(f.value_range[1])}]"
        else:
            domain = "-"
        rows.append([f.name, f.type, "yes" if f.nullable else "no", f"{f.presence:.1%}", domain])
    summary = f"{plural(len(schema), 'feature')}, inferred from {plural(schema.num_rows, 'row')}."
    return f'<p class="sub">{summary}</p>' + _table(
        ["feature", "type", "nullable", "presence", "domain"], rows, {3}
    )


def _statistics_body(statistics: Statistics, plots: PlotCache) -> str:
    parts = []
    for split in statistics:
        rows = [
            [
                s.name,
                s.type,
                format_number(s.count),
                format_number(s.missing),
                format_number(s.invalid),
                format_number(s.mean),
                format_number(s.std),
                format_number(s.min),
                format_number(s.quantile(0.5)),
                format_number(s.max),
                ", ".join(f"{v} ({c})" for v, c in s.top_values[:3]),
            ]
            for s in split.features
        ]
        parts.append(f"<h2>Split {html.escape(split.name)} ({split.num_rows:,} rows)</h2>")
        parts.append(
            _table(
                [
                    "feature",
                    "type",
                    "count",
                    "missing",
                    "invalid",
                    "mean",
                    "std",
                    "min",
                    "median",
                    "max",
                    "top values",
                ],
                rows,
                set(range(2, 10)),
            )
        )
    images = []
    for feature in statistics.feature_names:
        per_split = [(s.name, s[feature]) for s in statistics if feature in s]
        images.append(_img(plots.feature(feature, per_split), f"distribution of {feature}"))
    parts.append("<h2>Distributions by split</h2>")
    parts.append('<div class="grid">' + "".join(p for p in images if p) + "</div>")
    return "".join(parts)


def _anomalies_body(anomalies: Anomalies, plots: PlotCache) -> str:
    heading = f"split {html.escape(anomalies.split)} against {html.escape(anomalies.baseline)}"
    if anomalies.ok:
        parts = [f'<p class="ok">No anomalies found in {heading}.</p>']
    else:
        parts = [
            f"<p>{heading}: <span class='error'>{plural(len(anomalies.errors), 'error')}</span>, "
            f"<span class='warning'>{plural(len(anomalies.warnings), 'warning')}</span></p>",
            _table(
                ["severity", "feature", "kind", "description"],
                [[a.severity, a.feature, a.kind, a.description] for a in anomalies],
            ),
        ]
    if anomalies.drift:
        parts.append("<h2>Drift</h2>")
        drift = plots.drift(anomalies.drift, anomalies.split, anomalies.baseline)
        parts.append(_img(drift, "drift distance per feature"))
        parts.append(
            _table(
                ["feature", "distance", "value", "threshold", "drifted"],
                [
                    [
                        d.feature,
                        d.metric.replace("_", "-"),
                        f"{d.value:.3f}",
                        f"{d.threshold:.3f}",
                        "yes" if d.drifted else "no",
                    ]
                    for d in anomalies.drift
                ],
                {2, 3},
            )
        )
    return "".join(parts)


def _evaluation_body(evaluation: Evaluation, plots: PlotCache) -> str:
    names = list(evaluation.metric_names)
    rows = [
        [entry.label, format_number(entry.count)]
        + [format_number(entry.metrics.get(m)) for m in names]
        for entry in (evaluation.overall, *evaluation.slices)
    ]
    parts = [
        f'<p class="sub">{html.escape(evaluation.task)} on '
        f"{plural(evaluation.overall.count, 'row')}"
        + (
            f"; positive label {html.escape(evaluation.positive_label)}"
            if evaluation.positive_label is not None
            else ""
        )
        + "</p>",
        _table(["slice", "rows", *names], rows, set(range(1, len(names) + 2))),
    ]
    for column in evaluation.slice_columns:
        parts.append(f"<h2>By {html.escape(column)}</h2>")
        parts.append(_img(plots.slice_metrics(evaluation, column), f"metrics by {column}"))
    return "".join(parts)


def report_html(
    value: Schema | Statistics | Anomalies | Evaluation,
    title: str | None = None,
    *,
    plots: PlotCache | None = None,
) -> str:
    """Return the HTML text of the report of ``value``; its plots come from ``plots`` when
    given (drawn once per stored artifact, see :mod:`~zenml_collab.core.analysis.plot_cache`)."""
    from zenml_collab.core.analysis.anomalies import Anomalies
    from zenml_collab.core.analysis.evaluation import Evaluation
    from zenml_collab.core.analysis.plot_cache import PlotCache
    from zenml_collab.core.analysis.schema import Schema
    from zenml_collab.core.analysis.statistics import Statistics

    plots = plots if plots is not None else PlotCache()
    if isinstance(value, Schema):
        default, body = "Schema", _schema_body(value)
    elif isinstance(value, Statistics):
        default, body = "Data statistics", _statistics_body(value, plots)
    elif isinstance(value, Anomalies):
        default, body = "Data anomalies", _anomalies_body(value, plots)
    elif isinstance(value, Evaluation):
        default, body = "Model evaluation", _evaluation_body(value, plots)
    else:
        raise TypeError(f"no HTML report for a {type(value).__name__}")
    heading = html.escape(title or default)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{heading}</title><style>{_CSS}</style></head>"
        f"<body><h1>{heading}</h1>{body}</body></html>\n"
    )


def write_html_report(
    value: Schema | Statistics | Anomalies | Evaluation,
    path: str | os.PathLike[str],
    title: str | None = None,
    *,
    plots: PlotCache | None = None,
) -> Path:
    """Write the self-contained HTML report of ``value`` to ``path`` and return the path.

    The file appears complete or not at all (written to a temporary file, then renamed), so a
    browser refreshing it never sees half a report.

    Example::

        >>> write_html_report(compute_statistics({"train": tr, "eval": ev}), "stats.html")
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = report_html(value, title, plots=plots)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
