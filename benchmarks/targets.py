"""The performance targets of issue 10, checked against a set of results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Figures = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Target:
    name: str
    text: str
    # (value, limit, passed) from the figures, or None when its figures were not measured.
    check: Callable[[Figures], tuple[float, float, bool] | None]
    unit: str = "s"


def _median(figs: Figures, name: str) -> float | None:
    fig = figs.get(name)
    return None if fig is None else float(fig["median"])


def _at_most(name: str, limit: float, scale: Callable[[Figures, float], float] | None = None
             ) -> Callable[[Figures], tuple[float, float, bool] | None]:
    def check(figs: Figures) -> tuple[float, float, bool] | None:
        value = _median(figs, name)
        if value is None:
            return None
        if scale is not None:
            value = scale(figs, value)
        return value, limit, value <= limit
    return check


def _per_step(name: str) -> Callable[[Figures, float], float]:
    return lambda figs, value: value / float(figs[name].get("steps", 1))


def _ratio(a: str, b: str, limit: float, *, at_least: bool
           ) -> Callable[[Figures], tuple[float, float, bool] | None]:
    def check(figs: Figures) -> tuple[float, float, bool] | None:
        x, y = _median(figs, a), _median(figs, b)
        if x is None or y is None or y == 0:
            return None
        value = x / y
        return value, limit, value >= limit if at_least else value <= limit
    return check


def _extra(name: str, key: str, limit: float, *, at_least: bool
           ) -> Callable[[Figures], tuple[float, float, bool] | None]:
    def check(figs: Figures) -> tuple[float, float, bool] | None:
        fig = figs.get(name)
        if fig is None or fig.get(key) is None:
            return None
        value = float(fig[key])
        return value, limit, value >= limit if at_least else value <= limit
    return check


def _peak_vs_artifact(figs: Figures) -> tuple[float, float, bool] | None:
    fig = figs.get("big_cold")
    if fig is None or fig.get("peak_rss_delta_mb") is None:
        return None
    value = float(fig["peak_rss_delta_mb"]) / float(fig["largest_artifact_mb"])
    return value, 2.0, value <= 2.0


def _flat(figs: Figures) -> tuple[float, float, bool] | None:
    values = [float(f["median"]) for n, f in figs.items() if n.startswith("lookup_hit_")]
    if len(values) < 2:
        return None
    value = max(values) / min(values)
    return value, 1.2, value <= 1.2


TARGETS = (
    Target("import", "`import zenml_collab` (process) <= 0.15 s", _at_most("import", 0.15)),
    Target("cached_step", "cached re-run <= 2 ms per step (in-process)",
           _at_most("chain_cached", 0.002, _per_step("chain_cached"))),
    Target("cold_step", "cold trivial steps <= 5 ms overhead per step",
           _at_most("chain_cold", 0.005, _per_step("chain_cold"))),
    Target("cached_process", "`collab run` of the cached 20-step pipeline <= 0.3 s "
           "(issue 15; was 0.5 s)", _at_most("chain_cached_process", 0.3)),
    Target("vs_zenml", "cached 20-step re-run >= 30x faster than ZenML (in-process)",
           _ratio("zenml_chain_cached", "chain_cached", 30.0, at_least=True), unit="x"),
    Target("big_cached", "10 x 100 MB cached re-run <= 0.1 s", _at_most("big_cached", 0.1)),
    Target("big_cold", "10 x 100 MB cold within 2x of np.save",
           _ratio("big_cold", "big_np_save", 2.0, at_least=False), unit="x"),
    Target("big_memory", "peak memory of the cold run <= 2x the largest artifact",
           _peak_vs_artifact, unit="x"),
    Target("hashing", "content hashing >= 1 GB/s",
           _extra("hash_files", "gb_per_s", 1.0, at_least=True), unit="GB/s"),
    Target("lookup_flat", "cache lookup flat from 10 to 100,000 prior runs (within 20%)",
           _flat, unit="x"),
    Target("mysql_statements", "statements per cached step on MySQL <= 3",
           _extra("mysql_gcs_cached", "statements_per_step", 3.0, at_least=False), unit="count"),
    Target("gcs_requests", "requests per cached step on GCS <= 1",
           _extra("mysql_gcs_cached", "gcs_requests_per_step", 1.0, at_least=False),
           unit="count"),
    Target("doctor", "`collab doctor` on a healthy setup < 3 s (fakes, process)",
           _at_most("doctor", 3.0)),
    Target("bootstrap_rerun_writes", "`collab bootstrap` re-run makes 0 mutating API requests",
           _extra("bootstrap_rerun", "mutating_requests", 0.0, at_least=False), unit="count"),
)


DATA_TARGETS = (
    Target("data_views_extra", "data: stats + schema (+ anomalies) of 1M x 6 within the run "
           "<= 1.0 s extra", _at_most("data_views_compute", 1.0)),
    *(Target(f"data_{v}", f"data: {v}() <= 0.2 s in a fresh process (1M x 6)",
             _at_most(f"data_{v}", 0.2)) for v in ("view_schema", "view_statistics",
                                                     "view_anomalies")),
    Target("data_vs_plain_time", "data: cold TrainingPipeline <= 1.5x plain pandas + sklearn "
           "(time)", _extra("data_pipeline_cold", "vs_plain_time", 1.5, at_least=False),
           unit="x"),
    Target("data_vs_plain_memory", "data: cold TrainingPipeline <= 1.5x plain pandas + sklearn "
           "(peak memory)", _extra("data_pipeline_cold", "vs_plain_memory", 1.5, at_least=False),
           unit="x"),
)
COMPUTE_TARGETS = (
    Target("compute_cached_vertex_jobs", "compute: a fully cached pipeline with vertex steps "
           "launches 0 jobs", _extra("compute_cached_vertex", "jobs_created", 0.0,
                                     at_least=False), unit="count"),
    Target("compute_cached_vertex_statements", "compute: ... and costs the statements of the "
           "in-process cached run (0 extra)",
           _extra("compute_cached_vertex", "extra_statements", 0.0, at_least=False),
           unit="count"),
    Target("compute_cached_vertex_time", "compute: ... and its time within 1.5x of in-process",
           _extra("compute_cached_vertex", "vs_inproc_time", 1.5, at_least=False), unit="x"),
)
TARGETS = (*TARGETS, *DATA_TARGETS, *COMPUTE_TARGETS)


def evaluate(figs: Figures) -> list[dict[str, Any]]:
    out = []
    for target in TARGETS:
        result = target.check(figs)
        if result is None:
            out.append({"name": target.name, "text": target.text, "status": "not measured"})
            continue
        value, limit, passed = result
        out.append({"name": target.name, "text": target.text, "value": value, "limit": limit,
                    "unit": target.unit, "status": "met" if passed else "MISSED"})
    return out
