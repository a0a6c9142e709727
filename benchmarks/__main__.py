"""``python -m benchmarks``: run the sections, print the table, write the results.

    python -m benchmarks [--quick | --tiny] [--only startup,chain,...] [--vs zenml]
                         [--out benchmarks/results] [--workdir DIR]

``scripts/bench`` wraps this and starts MariaDB and fake-gcs-server for the ``shared`` section.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

from benchmarks import (
    bench_compute,
    bench_data,
    bench_distance,
    bench_lookup,
    bench_pipelines,
    bench_shared,
    bench_startup,
    bench_team,
)
from benchmarks.context import PRESETS, Context
from benchmarks.harness import Figure, Skip, start_spawner
from benchmarks.report import build, text_table, write
from benchmarks.targets import evaluate

ROOT = Path(__file__).resolve().parent.parent

SECTIONS: dict[str, Callable[[Context], list[Figure]]] = {
    "startup": bench_startup.run,
    "chain": bench_pipelines.run_chain,
    "big": bench_pipelines.run_big,
    "hashing": bench_pipelines.run_hashing,
    "lookup": bench_lookup.run,
    "shared": bench_shared.run,
    "team": bench_team.run,
    "distance": bench_distance.run,
    "data": bench_data.run,
    "compute": bench_compute.run,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer repeats, smaller sizes")
    size.add_argument("--tiny", action="store_true",
                      help="every code path at toy sizes (the smoke test); figures mean nothing")
    parser.add_argument("--only", default="", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--vs", choices=["zenml"], help="also run the equivalent ZenML pipelines")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results",
                        help="where latest.json and latest.md go")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="scratch directory (default: a new temporary one, removed after)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    return parser.parse_args(argv)


def byte_compile_package() -> None:
    """Write zenml-collab's ``.pyc`` files before anything is timed, as ``pip install`` of a
    wheel does at install time. An editable install writes them on first import, unless
    PYTHONDONTWRITEBYTECODE is set (it is on this project's machine): every fresh process
    would then compile our modules from source (~30 ms of a view, ~20 ms of `collab run`),
    a cost no installed copy pays."""
    import compileall

    import zenml_collab

    compileall.compile_dir(str(Path(zenml_collab.__file__).parent), quiet=1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start_spawner()  # before this process grows: see harness.start_spawner
    byte_compile_package()
    preset = "tiny" if args.tiny else "quick" if args.quick else "default"
    chosen = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    base = args.workdir or Path(tempfile.mkdtemp(prefix="collab-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    ctx = Context(sizes=PRESETS[preset], preset=preset, workdir=base, repo_dir=base / "repos",
                  vs_zenml=args.vs == "zenml")
    ctx.repo_dir.mkdir(exist_ok=True)
    # A benchmark's own repos are throw-away: a warning per run would only add noise.
    warnings.simplefilter("ignore")
    figures: dict[str, dict[str, object]] = {}
    skipped: dict[str, str] = {}
    failed = False
    started = time.perf_counter()
    try:
        for section in chosen:
            t0 = time.perf_counter()
            ctx.say(f"section {section} ...")
            try:
                for fig in SECTIONS[section](ctx):
                    figures[fig.name] = fig.to_json()
            except Skip as exc:
                skipped[section] = str(exc)
                ctx.say(f"section {section} skipped: {exc}")
                continue
            except Exception:
                failed = True
                skipped[section] = "FAILED: " + traceback.format_exc(limit=3).strip().splitlines()[-1]
                traceback.print_exc()
                continue
            ctx.say(f"section {section} done in {time.perf_counter() - t0:.1f} s")
        if ctx.vs_zenml:
            from benchmarks import bench_zenml

            try:
                for fig in bench_zenml.run(ctx, figures):
                    figures[fig.name] = fig.to_json()
            except Skip as exc:
                skipped["zenml"] = str(exc)
                ctx.say(f"ZenML comparison skipped: {exc}")
            except Exception:
                failed = True
                skipped["zenml"] = "FAILED: " + traceback.format_exc(limit=3).strip().splitlines()[-1]
                traceback.print_exc()
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    results = build(figures, evaluate(figures), skipped, ctx.notes, preset, ROOT)
    print(text_table(results))
    json_path, md_path = write(results, args.out)
    ctx.say(f"wrote {json_path} and {md_path} ({time.perf_counter() - started:.0f} s in all)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
