"""`collab show PIPELINE`: schema, statistics, anomalies and evaluation of its latest run."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("pipeline")
@click.option("--schema", "views", flag_value="schema", multiple=True, help="Inferred schema.")
@click.option("--statistics", "views", flag_value="statistics", multiple=True,
              help="Per split and feature statistics.")
@click.option("--anomalies", "views", flag_value="anomalies", multiple=True,
              help="Eval split checked against train.")
@click.option("--evaluate", "views", flag_value="evaluate", multiple=True,
              help="Metrics overall and per slice.")
@click.option("--html", "html", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML report (one view only).")
def show(pipeline: str, views: tuple[str, ...], html: Path | None) -> None:
    """Show what PIPELINE's latest successful run saw and achieved (default: all views)."""
    import os

    from zenml_collab.core.repository import Repository
    from zenml_collab.core.training.pipeline import TrainingPipeline
    from zenml_collab.errors import PipelineError

    selected = list(dict.fromkeys(views)) or ["schema", "statistics", "anomalies", "evaluate"]
    if html and len(selected) != 1:
        raise click.UsageError("--html writes one report: pick one of --schema, --statistics, "
                               "--anomalies or --evaluate")
    found = Repository().get_pipeline_by_name(pipeline)
    if not isinstance(found, TrainingPipeline):
        raise PipelineError(f"{pipeline!r} is not a TrainingPipeline",
                            "these views exist for training pipelines; use `collab runs show`")
    os.environ.setdefault("COLLAB_NO_BROWSER", "1")
    methods = {"schema": found.view_schema, "statistics": found.view_statistics,
               "anomalies": found.view_anomalies, "evaluate": found.evaluate}
    for view in selected:
        methods[view](html=html or False)
