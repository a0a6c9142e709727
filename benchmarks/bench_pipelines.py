"""Sections 2 and 3: a chain of trivial steps, and large numpy artifacts; content hashing.

Every cold sample runs a pipeline no store has seen (a fresh ``salt`` parameter and name), and
every cached sample is checked to be all cache hits, so a figure cannot silently measure the
wrong path.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

from benchmarks.context import Context
from benchmarks.harness import Figure, measure, measure_process
from benchmarks.workspace import (
    MB,
    Workspace,
    big_pipeline,
    chain_pipeline,
    collab_argv,
    expect_all,
)

_salts = itertools.count(1)


def run_chain(ctx: Context) -> list[Figure]:
    sizes = ctx.sizes
    length = sizes.chain_length
    ws = Workspace.create(ctx.repo_dir, "chain")
    repo = ws.repository()
    figures: list[Figure] = []

    pending: dict[str, object] = {}

    def new_cold() -> None:
        salt = next(_salts)
        pending["p"] = chain_pipeline(ws, f"chain-cold-{salt}", length, salt=salt)

    def run_cold() -> None:
        expect_all(pending["p"].run(repo), "executed")  # type: ignore[attr-defined]

    # The first run in a process pays one-off imports (sqlalchemy, alembic, ...): warm up once.
    cold = measure("chain_cold", f"{length} trivial steps, cold (in-process)", run_cold,
                   setup=new_cold, repeat=sizes.repeat_cold, warmup=1, steps=length)
    cold.extra["per_step_s"] = cold.median / length
    figures.append(cold)

    chain_pipeline(ws, "chain", length).run(repo)
    ws.commit_configs()

    def new_cached() -> None:
        pending["p"] = chain_pipeline(ws, "chain", length)

    def run_cached() -> None:
        expect_all(pending["p"].run(repo), "cached")  # type: ignore[attr-defined]

    cached = measure("chain_cached", f"{length} trivial steps, cached re-run (in-process)",
                     run_cached, setup=new_cached, repeat=sizes.repeat_inproc, warmup=1,
                     steps=length)
    cached.extra["per_step_s"] = cached.median / length
    figures.append(cached)

    config = f"pipelines/{'chain'}.yaml"
    argv = [*collab_argv(), "run", config]
    _check_run_without_pythonpath(ctx, ws, argv)
    whole = measure_process("chain_cached_process",
                            f"`collab run` of the cached {length}-step pipeline (process)", argv,
                            cwd=ws.root, env=ws.process_env(), repeat=sizes.repeat_process,
                            check=lambda s: None if "0 executed" in s.stdout
                            else f"not fully cached: {s.stdout[-300:]}", steps=length)
    figures.append(whole)
    return figures


def _check_run_without_pythonpath(ctx: Context, ws: Workspace, argv: list[str]) -> None:
    from benchmarks.harness import run_process

    sample = run_process(argv, cwd=ws.root)
    if sample.returncode != 0 and "cannot import step" in sample.stderr:
        ctx.note("`collab run pipelines/X.yaml` cannot import steps that live at the repo root "
                 "unless PYTHONPATH includes it: cli/repo_cmds.py:run calls Pipeline.from_config "
                 "before Repository.run_pipeline puts the root on sys.path (call "
                 "repo._importable() first). The process benchmarks set PYTHONPATH.")


def run_big(ctx: Context) -> list[Figure]:
    import numpy as np

    sizes = ctx.sizes
    count, mb = sizes.big_count, sizes.big_mb
    ws = Workspace.create(ctx.repo_dir, "big")
    repo = ws.repository()
    what = f"{count} x {mb} MiB numpy"
    pending: dict[str, object] = {}
    scratch = ctx.workdir / "np-save"

    def new_cold() -> None:
        salt = next(_salts)
        pending["p"] = big_pipeline(ws, f"big-cold-{salt}", count, mb, salt=salt)

    def run_cold() -> None:
        expect_all(pending["p"].run(repo), "executed")  # type: ignore[attr-defined]

    cold = measure("big_cold", f"{what}, cold (in-process)", run_cold, setup=new_cold,
                   repeat=sizes.repeat_big_cold, largest_artifact_mb=mb, steps=count)

    target: dict[str, Path] = {}

    def fresh_scratch() -> None:
        # New files every repetition, kept like artifacts are: deleting them before the next
        # repetition would let the kernel drop their dirty pages unwritten and flatter the
        # baseline (the store's artifacts stay, so its writes end up at disk speed).
        target["dir"] = scratch / f"rep-{next(_salts)}"
        target["dir"].mkdir(parents=True)

    def np_save() -> None:
        # The same work a step does to make its array, then the plain np.save of it.
        for i in range(count):
            array = np.full(mb * 131072, float(i), dtype=np.float64)
            np.save(target["dir"] / f"{i}.npy", array, allow_pickle=False)
            del array

    baseline = measure("big_np_save", f"{what}: np.full + np.save only (baseline)", np_save,
                       setup=fresh_scratch, repeat=sizes.repeat_big_cold)
    shutil.rmtree(scratch, ignore_errors=True)
    cold.extra["vs_np_save"] = cold.median / baseline.median

    big_pipeline(ws, "big", count, mb).run(repo)

    def new_cached() -> None:
        pending["p"] = big_pipeline(ws, "big", count, mb)

    def run_cached() -> None:
        expect_all(pending["p"].run(repo), "cached")  # type: ignore[attr-defined]

    cached = measure("big_cached", f"{what}, cached re-run (in-process)", run_cached,
                     setup=new_cached, repeat=sizes.repeat_big_cached, warmup=1, steps=count)
    shutil.rmtree(ws.root / ".collab" / "artifacts", ignore_errors=True)
    return [cold, baseline, cached]


def run_hashing(ctx: Context) -> list[Figure]:
    """Throughput of ``hash_files`` over a file already in the page cache."""
    import numpy as np

    from zenml_collab.core.hashing import hash_files

    size_mb = ctx.sizes.hash_mb
    folder = ctx.workdir / "hashing"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "data.bin"
    chunk = np.arange(MB // 8, dtype=np.uint64).tobytes()
    with open(path, "wb") as fh:
        for _ in range(size_mb):
            fh.write(chunk)
    hash_files(folder, [path.name])  # into the page cache: this measures hashing, not the disk
    fig = measure("hash_files", f"hash_files over {size_mb} MiB (page cache)",
                  lambda: hash_files(folder, [path.name]), repeat=max(3, ctx.sizes.repeat_cold))
    fig.extra["gb_per_s"] = size_mb * MB / 1e9 / fig.median
    fig.extra["bytes"] = size_mb * MB
    _remove(path)
    return [fig]


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
