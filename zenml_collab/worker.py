"""The worker entry point inside a container: ``python -m zenml_collab.worker --task TASK``.

It fetches the run's code (the source archive the task names) from the artifact store, loads
the step's inputs, runs the step, stores its outputs and records the step exactly like the
in-process runner (:func:`zenml_collab.core.backends.execute.execute_task`).

Where the stores are comes from the file ``COLLAB_WORKER_STORES_FILE`` names (the docker
backend mounts it read-only, so a database password is never in the container's environment),
else from ``COLLAB_WORKER_STORES`` (Vertex AI, whose settings hold no secret: IAM login); both
are JSON: ``metadata``, the metadata settings, and ``artifacts``, the artifact store URI;
credentials from the environment
(Application Default Credentials: the job's service account on Vertex AI, a mounted key file
on docker). The last line on stderr is the error a member sees when the step fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

STORES_ENV = "COLLAB_WORKER_STORES"
STORES_FILE_ENV = "COLLAB_WORKER_STORES_FILE"
EXIT_STEP_FAILED = 1
EXIT_WORKER_ERROR = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zenml_collab.worker")
    parser.add_argument("--task", required=True, help="the launcher's task (base64 JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from zenml_collab.config import MetadataConfig
    from zenml_collab.core.backends.execute import execute_task
    from zenml_collab.core.backends.task import StepTask
    from zenml_collab.core.stores import open_artifact_store, open_metadata_store
    from zenml_collab.errors import CollabError

    try:
        task = StepTask.from_arg(args.task)
        metadata_cfg, artifacts_uri = _stores(MetadataConfig)
        workdir = Path(tempfile.mkdtemp(prefix="collab-worker-"))
        src = workdir / "src"
        metadata = open_metadata_store(metadata_cfg, workdir)
        metadata.check_schema()
        artifacts = open_artifact_store(artifacts_uri, workdir)
        _prepare_source(task, artifacts, src)
        os.chdir(src)
        sys.path.insert(0, str(src))
        refs = execute_task(task, metadata, artifacts)
    except CollabError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        sys.stderr.flush()
        return EXIT_STEP_FAILED if type(exc).__name__ == "StepFailedError" else EXIT_WORKER_ERROR
    print(json.dumps({"outputs": {k: v.to_json() for k, v in refs.items()}}), flush=True)
    return 0


def _prepare_source(task: Any, artifacts: Any, src: Path) -> None:
    """The run's code under ``src`` with its repository marker; on failure nothing is left."""
    from zenml_collab.core.backends.source import SourceArchive, unpack_source
    from zenml_collab.core.backends.task import WorkerError
    from zenml_collab.errors import CollabError

    try:
        if task.source:
            unpack_source(SourceArchive.from_json(task.source), artifacts, src)
        (src / ".collab").mkdir(parents=True, exist_ok=True)  # the repository root marker
    except (CollabError, OSError) as exc:
        shutil.rmtree(src.parent, ignore_errors=True)
        if isinstance(exc, CollabError):
            raise
        raise WorkerError(f"the source archive cannot be laid out: {exc}",
                          "re-run the pipeline from a clean checkout; nothing was executed"
                          ) from None


def _stores(config: Any) -> tuple[Any, str]:
    """The stores the launcher names: (metadata settings, artifact store URI)."""
    from pydantic import ValidationError

    from zenml_collab.core.backends.task import WorkerError

    try:
        stores = json.loads(_stores_json())
        artifacts = stores["artifacts"]
        if not isinstance(artifacts, str) or not artifacts.strip():
            raise ValueError("the artifact store must be a non-empty URI or path")
        return config.model_validate(stores["metadata"]), artifacts
    except (ValueError, TypeError, KeyError, ValidationError) as exc:
        detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else repr(exc)
        raise WorkerError(f"the store settings given to this worker are malformed ({detail})",
                          "the launcher writes them; run the step again with the same "
                          "zenml-collab version on both sides") from None


def _stores_json() -> str:
    from zenml_collab.core.backends.task import WorkerError

    path = os.environ.get(STORES_FILE_ENV)
    if path:
        try:
            return Path(path).read_text()
        except OSError as exc:
            raise WorkerError(f"cannot read the store settings {path}: {exc.strerror}",
                              "the docker backend mounts this file; see README") from None
    raw = os.environ.get(STORES_ENV)
    if not raw:
        raise WorkerError(f"neither {STORES_FILE_ENV} nor {STORES_ENV} is set",
                          "the launcher sets one; see README")
    return raw


if __name__ == "__main__":
    raise SystemExit(main())
