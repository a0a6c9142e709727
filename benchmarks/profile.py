"""Profile the paths the targets are about, to find where the time goes.

    python -m benchmarks.profile cached [--steps 20] [--top 30]   # in-process cached re-run
    python -m benchmarks.profile cold                             # in-process cold run
    python -m benchmarks.profile process                          # a whole cached `collab run`

In-process modes use cProfile with a wall clock (so waits on git or the database show); the
process mode prints ``-X importtime``'s slowest imports and a cProfile of the whole process.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import pstats
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks.workspace import Workspace, chain_pipeline, collab_argv, expect_all


def _in_process(mode: str, steps: int, top: int, repeat: int) -> None:
    ws = Workspace.create(Path(tempfile.mkdtemp(prefix="collab-profile-")), "repo")
    repo = ws.repository()
    salts = itertools.count(1)
    chain_pipeline(ws, "chain", steps).run(repo)
    chain_pipeline(ws, "warm", steps, salt=-1).run(repo)  # one-off imports out of the way
    pipelines = [chain_pipeline(ws, "chain", steps) if mode == "cached"
                 else chain_pipeline(ws, f"cold-{s}", steps, salt=s)
                 for s in itertools.islice(salts, repeat)]
    profiler = cProfile.Profile(time.perf_counter)
    t0 = time.perf_counter()
    profiler.enable()
    for pipeline in pipelines:
        expect_all(pipeline.run(repo), "cached" if mode == "cached" else "executed")
    profiler.disable()
    print(f"{repeat} {mode} runs of {steps} steps: {(time.perf_counter() - t0) / repeat * 1e3:.1f} "
          "ms per run under the profiler")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def _process(steps: int, top: int) -> None:
    ws = Workspace.create(Path(tempfile.mkdtemp(prefix="collab-profile-")), "repo")
    chain_pipeline(ws, "chain", steps).run(ws.repository())
    ws.commit_configs()
    collab = collab_argv()
    # The console script run by this interpreter, so -X and -m cProfile apply to it.
    script = collab if collab[0] == sys.executable else [sys.executable, *collab]
    script = script[1:]
    command = [*script, "run", "pipelines/chain.yaml"]
    env = ws.process_env()
    done = subprocess.run([sys.executable, "-X", "importtime", *command], cwd=ws.root, env=env,
                          capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[0].isdigit():
            rows.append((int(parts[1]), int(parts[0]), parts[2]))
    print("slowest imports of a cached `collab run` (cumulative ms, self ms):")
    for cumulative, self_us, name in sorted(rows, reverse=True)[:top]:
        print(f"  {cumulative / 1000:8.1f} {self_us / 1000:8.1f}  {name}")
    out = Path(tempfile.mkdtemp()) / "run.prof"
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), *command], cwd=ws.root,
                   env=env, capture_output=True, check=True)
    pstats.Stats(str(out)).sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["cached", "cold", "process"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.mode == "process":
        _process(args.steps, args.top)
    else:
        _in_process(args.mode, args.steps, args.top, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
