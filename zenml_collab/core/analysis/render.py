"""Rich terminal renderables for the four analysis values.

Each function returns a renderable (print it with ``rich.console.Console().print(...)``); none
writes to the terminal itself, so the CLI decides where output goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType

    from zenml_collab.core.analysis.anomalies import Anomalies
    from zenml_collab.core.analysis.evaluation import Evaluation
    from zenml_collab.core.analysis.schema import Schema
    from zenml_collab.core.analysis.statistics import Statistics

__all__ = [
    "format_number",
    "plural",
    "render_anomalies",
    "render_evaluation",
    "render_schema",
    "render_statistics",
    "render_value",
]

_SHOWN_CATEGORIES = 6
_SHOWN_TOP_VALUES = 3


def format_number(value: float | int | None, digits: int = 4) -> str:
    """Short human form of a number: ``None`` as ``-``, ints as ints, floats to ``digits``."""
    if value is None:
        return "-"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    return f"{value:.{digits}g}"


def plural(count: int, noun: str) -> str:
    """``"1 error"``, ``"2 errors"``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def render_schema(schema: Schema) -> RenderableType:
    """A table of features: type, nullable, presence and domain."""
    from rich.table import Table

    table = Table(title=f"Schema ({len(schema)} features, from {schema.num_rows:,} rows)")
    table.add_column("feature")
    table.add_column("type")
    table.add_column("nullable", justify="center")
    table.add_column("presence", justify="right")
    table.add_column("domain")
    for feature in schema:
        if feature.categories is not None:
            shown = ", ".join(feature.categories[:_SHOWN_CATEGORIES])
            more = len(feature.categories) - _SHOWN_CATEGORIES
            domain = f"{{{shown}{f', +{more} more' if more > 0 else ''}}}"
        elif feature.value_range is not None:
            low, high = feature.value_range
            domain = f"[{format_number(low)}, {format_number(high)}]"
        else:
            domain = "-"
        table.add_row(
            feature.name,
            feature.type,
            "yes" if feature.nullable else "no",
            f"{feature.presence:.1%}",
            domain,
        )
    return table


def render_statistics(statistics: Statistics) -> RenderableType:
    """Per split: a table of numeric features (moments, quantiles) and one of the others
    (distinct and top values). Two narrow tables read better in a terminal than one wide one."""
    from rich import box
    from rich.console import Group
    from rich.table import Table

    def num(value: float | int | None) -> str:
        return format_number(value, 3)

    tables = []
    for split in statistics:
        numeric = [f for f in split.features if f.is_numeric]
        other = [f for f in split.features if not f.is_numeric]
        show_invalid = any(f.invalid for f in split.features)
        title = f"Statistics of split {split.name!r} ({split.num_rows:,} rows)"
        if numeric:
            table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD,
                          collapse_padding=True, pad_edge=False)
            table.add_column("feature", no_wrap=True)
            names = ["n", "miss", *(["bad"] if show_invalid else []),
                     "mean", "std", "min", "p5", "median", "p95", "max"]
            for name in names:
                table.add_column(name, justify="right", no_wrap=True)
            for f in numeric:
                table.add_row(
                    f.name, format_number(f.count), _highlight(f.missing, "yellow"),
                    *([_highlight(f.invalid, "red")] if show_invalid else []),
                    num(f.mean), num(f.std), num(f.min), num(f.quantile(0.05)),
                    num(f.quantile(0.5)), num(f.quantile(0.95)), num(f.max))
            tables.append(table)
        if other:
            table = Table(title=None if numeric else title, title_justify="left",
                          box=box.SIMPLE_HEAD)
            table.add_column("feature", no_wrap=True)
            table.add_column("type", no_wrap=True)
            for name in ("count", "missing", *(["invalid"] if show_invalid else []), "distinct"):
                table.add_column(name, justify="right", no_wrap=True)
            table.add_column("top values")
            for f in other:
                top = ", ".join(f"{v} ({c})" for v, c in f.top_values[:_SHOWN_TOP_VALUES])
                table.add_row(
                    f.name, f.type, format_number(f.count), _highlight(f.missing, "yellow"),
                    *([_highlight(f.invalid, "red")] if show_invalid else []),
                    format_number(f.unique), top or "-")
            tables.append(table)
    return Group(*tables)


def _highlight(count: int, colour: str) -> str:
    return f"[{colour}]{count:,}[/{colour}]" if count else "0"


def render_anomalies(anomalies: Anomalies) -> RenderableType:
    """The findings (or a green "no anomalies found") and the drift distance of each feature."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = []
    heading = f"split {anomalies.split!r} against {anomalies.baseline!r}"
    if anomalies.ok:
        parts.append(Text(f"No anomalies found in {heading}.", style="bold green"))
    else:
        table = Table(
            title=f"Anomalies in {heading}: "
            f"{plural(len(anomalies.errors), 'error')}, "
            f"{plural(len(anomalies.warnings), 'warning')}"
        )
        table.add_column("severity")
        table.add_column("feature")
        table.add_column("kind")
        table.add_column("description", overflow="fold")
        for anomaly in anomalies:
            colour = "red" if anomaly.severity == "error" else "yellow"
            table.add_row(
                f"[{colour}]{anomaly.severity}[/{colour}]",
                anomaly.feature,
                anomaly.kind,
                anomaly.description,
            )
        parts.append(table)
    if anomalies.drift:
        drift = Table(title="Drift per feature")
        drift.add_column("feature")
        drift.add_column("distance")
        drift.add_column("value", justify="right")
        drift.add_column("threshold", justify="right")
        drift.add_column("drifted", justify="center")
        for score in anomalies.drift:
            drift.add_row(
                score.feature,
                score.metric.replace("_", "-"),
                f"{score.value:.3f}",
                f"{score.threshold:.3f}",
                "[yellow]yes[/yellow]" if score.drifted else "no",
            )
        parts.append(drift)
    return Group(*parts)


def render_evaluation(evaluation: Evaluation) -> RenderableType:
    """Overall metrics first, then one row per slice value."""
    from rich.table import Table

    table = Table(title=f"Evaluation ({evaluation.task})")
    table.add_column("slice")
    table.add_column("rows", justify="right")
    for metric in evaluation.metric_names:
        table.add_column(metric, justify="right")
    for index, entry in enumerate((evaluation.overall, *evaluation.slices)):
        values = [format_number(entry.metrics.get(m)) for m in evaluation.metric_names]
        label = f"[bold]{entry.label}[/bold]" if index == 0 else entry.label
        table.add_row(label, f"{entry.count:,}", *values, end_section=index == 0)
    return table


def render_value(value: Schema | Statistics | Anomalies | Evaluation) -> RenderableType:
    """Dispatch to the ``render_*`` function for the value's type."""
    from zenml_collab.core.analysis.anomalies import Anomalies
    from zenml_collab.core.analysis.evaluation import Evaluation
    from zenml_collab.core.analysis.schema import Schema
    from zenml_collab.core.analysis.statistics import Statistics

    if isinstance(value, Schema):
        return render_schema(value)
    if isinstance(value, Statistics):
        return render_statistics(value)
    if isinstance(value, Anomalies):
        return render_anomalies(value)
    if isinstance(value, Evaluation):
        return render_evaluation(value)
    raise TypeError(f"cannot render a {type(value).__name__}")
