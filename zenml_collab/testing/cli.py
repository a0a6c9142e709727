"""Run the ``collab`` command in this process, as a test would from a shell."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, cwd: Path | None = None) -> CliResult:
    """``collab ARGS`` in ``cwd`` (default: here): its exit code and what it printed."""
    from zenml_collab.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    here = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(here)
    return CliResult(code, out.getvalue(), err.getvalue())
