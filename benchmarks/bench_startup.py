"""Section 1: ``import zenml_collab`` and ``collab --help`` as whole processes."""

from __future__ import annotations

import sys

from benchmarks.context import Context
from benchmarks.harness import Figure, measure_process
from benchmarks.workspace import collab_argv


def run(ctx: Context) -> list[Figure]:
    n = ctx.sizes.repeat_process
    python = [sys.executable]
    return [
        measure_process("python_startup", "python -c pass (baseline)", [*python, "-c", "pass"],
                        repeat=n),
        measure_process("import", "import zenml_collab (process)",
                        [*python, "-c", "import zenml_collab"], repeat=n),
        measure_process("help", "collab --help (process)", [*collab_argv(), "--help"], repeat=n),
    ]
