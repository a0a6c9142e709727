"""TrainingPipeline: datasource -> split -> preprocesser -> trainer -> evaluator, as in ZenML.

>>> p = TrainingPipeline(name="Pipeline A")                              # doctest: +SKIP
>>> p.add_datasource(CSVDatasource(name="diabetes", path="data/diabetes.csv"))  # doctest: +SKIP
>>> p.add_split(RandomSplit(split_map={"train": 0.7, "eval": 0.3}))     # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenml_collab.core.pipeline import Pipeline
from zenml_collab.core.step import BaseStep
from zenml_collab.errors import PipelineError

if TYPE_CHECKING:
    from zenml_collab.core.analysis.anomalies import Anomalies
    from zenml_collab.core.analysis.evaluation import Evaluation
    from zenml_collab.core.analysis.schema import Schema
    from zenml_collab.core.analysis.statistics import Statistics
    from zenml_collab.core.registry import PipelineHost
    from zenml_collab.core.run import Run
    from zenml_collab.core.training.views import RunViews

# step name -> the inputs it takes from earlier steps
WIRING: dict[str, dict[str, str]] = {
    "datasource": {},
    "split": {"data": "datasource"},
    "preprocesser": {"data": "split"},
    "trainer": {"features": "preprocesser.features", "labels": "preprocesser.labels"},
    "evaluator": {"model": "trainer", "features": "preprocesser.features",
                  "labels": "preprocesser.labels", "data": "split"},
}
ORDER = tuple(WIRING)


class TrainingPipeline(Pipeline):
    """The ZenML-style training pipeline; each ``add_*`` sets (or, on a copy, replaces) a step."""

    KIND = "training"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._repository: PipelineHost | None = None
        self._run_cache: Run | None = None

    def _set(self, step_name: str, step_obj: BaseStep, backend: str | None = None) -> None:
        self._check_mutable(f"add_{step_name}")
        if not isinstance(step_obj, BaseStep):
            raise PipelineError(f"add_{step_name} expects a configured step such as "
                                f"{_EXAMPLES[step_name]}, got {step_obj!r}",
                                "see README: TrainingPipeline")
        wanted = WIRING[step_name]
        missing = [src.partition(".")[0] for src in wanted.values()
                   if src.partition(".")[0] not in self._nodes]
        if missing:
            raise PipelineError(f"add_{step_name} needs {', '.join(sorted(set(missing)))} first",
                                f"add steps in order: {' -> '.join(ORDER)}")
        # A source with several outputs (the split stores its data views too) feeds its data.
        wanted = {arg: f"{src}.output" if "." not in src
                  and len(self._nodes[src].impl.output_names) > 1
                  and "output" in self._nodes[src].impl.output_names else src
                  for arg, src in wanted.items()}
        node = self._make_node(step_obj, name=step_name, inputs=wanted, params=None,
                               backend=backend)
        # Replacing keeps the step's place; later steps refer to it by name.
        self._nodes[step_name] = node

    def add_datasource(self, datasource: BaseStep, *, backend: str | None = None) -> None:
        self._set("datasource", datasource, backend)

    def add_split(self, split: BaseStep, *, backend: str | None = None) -> None:
        self._set("split", split, backend)

    def add_preprocesser(self, preprocesser: BaseStep, *, backend: str | None = None) -> None:
        self._set("preprocesser", preprocesser, backend)

    def add_trainer(self, trainer: BaseStep, *, backend: str | None = None) -> None:
        self._set("trainer", trainer, backend)

    def add_evaluator(self, evaluator: BaseStep, *, backend: str | None = None) -> None:
        self._set("evaluator", evaluator, backend)

    # -- results of the latest successful run ----------------------------------------------
    def _repo(self) -> PipelineHost:
        if self._repository is None:
            from zenml_collab.core.registry import default_host

            self._repository = default_host()
        return self._repository

    def copy(self, new_name: str) -> TrainingPipeline:
        clone = super().copy(new_name)
        assert isinstance(clone, TrainingPipeline)
        clone._repository = self._repository
        return clone

    def run(self, repository: PipelineHost | None = None) -> Run:
        if repository is not None:
            self._repository = repository
        self._run_cache = self._repo().run_pipeline(self)
        return self._run_cache

    def latest_run(self) -> Run:
        if self._run_cache is None:
            self._run_cache = self._repo().latest_run(self.name)
        return self._run_cache

    def _views(self) -> RunViews:
        """The data views of the latest run, read from its artifacts (see ``views.py``)."""
        from zenml_collab.core.training.views import RunViews

        repo = self._repo()
        return RunViews(self.latest_run(), artifacts=repo.artifacts, metadata=repo.reader,
                        store=lambda: repo.metadata, baseline=self._train_split())

    def _train_split(self) -> str:
        return str(self._nodes["preprocesser"].params.get("train_split", "train")) \
            if "preprocesser" in self._nodes else "train"

    def _eval_split(self) -> str:
        return str(self._nodes["evaluator"].params.get("split", "eval")) \
            if "evaluator" in self._nodes else "eval"

    def _show(self, value: Any, kind: str, html: bool | str | Path, show: bool,
              source: str | None = None) -> Any:
        """Print ``value`` and/or write its HTML report; ``source`` is the content hash of the
        artifact it was read from, whose plots are then drawn once and kept."""
        if show:
            from rich.console import Console

            from zenml_collab.core.analysis.render import render_value

            Console().print(render_value(value))
        if html:
            from zenml_collab.core.analysis.report import write_html_report

            path = Path(html) if isinstance(html, (str, Path)) else (
                self._repo().root / ".collab" / "reports" / f"{_slug(self.name)}-{kind}.html")
            path.parent.mkdir(parents=True, exist_ok=True)
            plots = None
            if source is not None:
                from zenml_collab.core.analysis.plot_cache import plot_cache_for

                plots = plot_cache_for(self._repo().root, source)
            write_html_report(value, path, title=f"{self.name}: {kind}", plots=plots)
            if not os.environ.get("COLLAB_NO_BROWSER"):
                import webbrowser

                webbrowser.open(path.resolve().as_uri())
            print(f"report written to {path}")
        return value

    def view_schema(self, html: bool | str | Path = False, *, show: bool = True) -> Schema:
        """Types, nullability and domains inferred from the train split (stored with the run)."""
        from zenml_collab.core.analysis.views import views_from_dicts

        views = self._views()
        value = views_from_dicts(schema=views.document("schema"))["schema"]
        return self._show(value, "schema", html, show, views.refs["schema"].hash)

    def view_statistics(self, html: bool | str | Path = False, *, show: bool = True) -> Statistics:
        """Per split and feature: counts, missing, moments, quantiles, top values, histograms."""
        from zenml_collab.core.analysis.views import views_from_dicts

        views = self._views()
        value = views_from_dicts(statistics=views.document("statistics"))["statistics"]
        return self._show(value, "statistics", html, show, views.refs["statistics"].hash)

    def view_anomalies(self, html: bool | str | Path = False, *, show: bool = True) -> Anomalies:
        """The eval split checked against the train split's schema and statistics."""
        from zenml_collab.core.analysis.views import views_from_dicts

        views = self._views()
        checked = views_from_dicts(anomalies=views.document("anomalies"))["anomalies"]
        evaluated = self._eval_split()
        if evaluated not in checked:
            raise PipelineError(
                f"no anomaly check of split {evaluated!r} against {self._train_split()!r}",
                f"checked splits: {', '.join(checked) or '(none)'}; evaluate another split")
        return self._show(checked[evaluated], "anomalies", html, show,
                          views.refs["anomalies"].hash)

    def evaluate(self, html: bool | str | Path = False, *, show: bool = True) -> Evaluation:
        """The evaluator's metrics, overall and per slice."""
        from zenml_collab.core.analysis.evaluation import Evaluation

        if "evaluator" not in self._nodes:
            raise PipelineError(f"pipeline {self.name!r} has no evaluator",
                                "add one with add_evaluator(Evaluator(metrics=[...]))")
        run = self.latest_run()
        value = Evaluation.from_dict(run.load("evaluator"))
        outputs = run["evaluator"].outputs
        source = (outputs.get("output") or next(iter(outputs.values()))).hash if outputs else None
        return self._show(value, "evaluation", html, show, source)


def _slug(name: str) -> str:
    from zenml_collab.core.pipeline_config import slugify

    return slugify(name)


_EXAMPLES = {
    "datasource": "CSVDatasource(name=..., path=...)",
    "split": "RandomSplit(split_map={'train': 0.7, 'eval': 0.3})",
    "preprocesser": "StandardPreprocesser(features=[...], labels=[...])",
    "trainer": "SklearnTrainer(model='LogisticRegression')",
    "evaluator": "Evaluator(metrics=['accuracy'], slices=['clinic'])",
}
