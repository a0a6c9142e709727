"""The data views of a TrainingPipeline run, read from the team's stores.

The split step stores ``schema``, ``statistics`` and ``anomalies`` beside its data (see
:class:`~zenml_collab.core.training.steps.RandomSplit`), so a view reads one small JSON artifact:
no split data is downloaded and nothing is recomputed, whoever ran the pipeline. A run without
them (recorded by an older version, or a custom split step) or whose train split differs from
the stored baseline gets them computed once, on first view, from its split data, stored as
artifacts and recorded in the metadata store under a key derived from the split data's content
hash: the next view, by any member, reads them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zenml_collab.core.hashing import sha256_json

if TYPE_CHECKING:
    from zenml_collab.core.artifacts.base import ArtifactRef, ArtifactStore
    from zenml_collab.core.metadata.lite import MetadataReader
    from zenml_collab.core.metadata.store import MetadataStore
    from zenml_collab.core.run import Run

log = logging.getLogger("zenml_collab.views")

VIEW_OUTPUTS = ("schema", "statistics", "anomalies")
"""The split step's outputs holding the data views, besides its data (``output``)."""

DERIVED_STEP = "zenml_collab.core.training.views:data_views"
"""Recorded as the step path of views derived after a run."""


def derived_key(data_hash: str, baseline: str) -> str:
    """Cache key of the views derived from the split data with content hash ``data_hash``."""
    from zenml_collab.core.analysis.views import VIEWS_FORMAT
    from zenml_collab.core.training.steps import SPLIT_COLUMN

    return sha256_json({"derived": "data views", "format": VIEWS_FORMAT, "data": data_hash,
                        "baseline": baseline, "split_column": SPLIT_COLUMN})


class RunViews:
    """Reads the views of one run, each from its own artifact, deriving them once if needed."""

    def __init__(self, run: Run, *, artifacts: ArtifactStore, metadata: MetadataReader,
                 store: Callable[[], MetadataStore], baseline: str,
                 step: str = "split") -> None:
        self.run = run
        self.artifacts = artifacts
        self.metadata = metadata
        self.store = store  # the full store, opened only to record views derived once
        self.baseline = baseline
        self.step = step
        self._derived: dict[str, ArtifactRef] | None = None
        self.refs: dict[str, ArtifactRef] = {}
        """The artifact each document was read from (its plots are cached by its hash)."""

    def document(self, name: str) -> dict[str, Any]:
        """The stored document of view ``name`` (one of :data:`VIEW_OUTPUTS`)."""
        from zenml_collab.core.artifacts.base import load_artifact

        outputs = self.run[self.step].outputs
        ref = outputs.get(name)
        if ref is not None and self._derived is None:
            doc = load_artifact(self.artifacts, ref)
            if isinstance(doc, dict) and doc.get("baseline") == self.baseline:
                self.refs[name] = ref
                return doc
        ref = self._derived_refs()[name]
        self.refs[name] = ref
        return dict(load_artifact(self.artifacts, ref))

    def _derived_refs(self) -> dict[str, ArtifactRef]:
        from zenml_collab.core.artifacts.base import ArtifactRef

        if self._derived is not None:
            return self._derived
        outputs = self.run[self.step].outputs
        data = outputs.get("output") or next(iter(outputs.values()))
        key = derived_key(data.hash, self.baseline)
        hit = self.metadata.cached_outputs(key)
        if hit is not None and set(hit) >= set(VIEW_OUTPUTS):
            refs = {n: ArtifactRef.from_json(hit[n]) for n in VIEW_OUTPUTS}
            if all(self.artifacts.exists(r) for r in refs.values()):
                self._derived = refs
                return refs
        self._derived = self._derive(key, data)
        return self._derived

    def _derive(self, key: str, data: ArtifactRef) -> dict[str, ArtifactRef]:
        from zenml_collab.core.analysis.views import compute_data_views
        from zenml_collab.core.artifacts.base import load_artifact, save_artifact
        from zenml_collab.core.training.steps import SPLIT_COLUMN

        log.info("run %s has no stored data views for baseline %r: computing them once",
                 self.run.id[:8], self.baseline)
        views = compute_data_views(load_artifact(self.artifacts, data),
                                   split_column=SPLIT_COLUMN, baseline=self.baseline)
        docs = {"schema": views.schema_dict(), "statistics": views.statistics_dict(),
                "anomalies": views.anomalies_dict()}
        refs = {name: save_artifact(self.artifacts, doc) for name, doc in docs.items()}
        self.store().remember_outputs(
            key, step_path=DERIVED_STEP, outputs={n: r.to_json() for n, r in refs.items()},
            run_id=self.run.id, new_artifacts=[r.to_json() for r in refs.values()])
        return refs
