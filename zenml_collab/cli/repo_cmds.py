"""Commands on the current repository: init, run, pipelines, runs, db."""

from __future__ import annotations

from pathlib import Path

import click

from zenml_collab.cli.render import console, echo_status, steps_table, styled, table


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=".", show_default=True, help="Directory inside the git repository.")
def init(directory: Path) -> None:
    """Create .collab/ (ignored by git) and the default embedded stores."""
    from zenml_collab.actions.init import init_repo

    result = init_repo(directory)
    verb = "initialised" if result.created else "already initialised"
    console.print(f"{verb}: {result.root}")
    if result.gitignore_updated == ".gitignore":
        console.print("added .collab/ to .gitignore (commit it with collab.yaml)")
    elif result.gitignore_updated:
        console.print(f"added .collab/ to {result.gitignore_updated} (your clone only)")
    console.print(f"metadata store: {result.metadata} (schema {result.schema_revision})")
    console.print(f"artifact store: {result.artifacts}")


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--allow-path", "allow_paths", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Let datasources read files under DIR, outside the repository, for this "
                   "run only (never recorded in the config). Repeatable.")
def run(config: Path, allow_paths: tuple[Path, ...]) -> None:
    """Re-run the pipeline described by CONFIG (a pipelines/*.yaml file)."""
    import os

    from zenml_collab.core.repository import Repository
    from zenml_collab.core.training.sources import ALLOW_PATHS_ENV

    if allow_paths:
        os.environ[ALLOW_PATHS_ENV] = os.pathsep.join(
            [*(str(p.resolve()) for p in allow_paths), os.environ.get(ALLOW_PATHS_ENV, "")])

    repo = Repository(config.parent if config.parent.exists() else None)
    pipeline = repo.pipeline_from_config(config.resolve())
    # Plain click output: `collab run` never imports rich (DESIGN §12, the member's wait).
    result = repo.run_pipeline(pipeline, on_step=lambda s: echo_status(
        f"  {s.name}: ", s.status, f" ({s.reason})"))
    click.echo(result.summary())


@click.group()
def pipelines() -> None:
    """The team's pipelines."""


@pipelines.command("list")
def pipelines_list() -> None:
    """List pipelines with their number of runs."""
    from zenml_collab.core.repository import Repository

    repo = Repository()
    rows = [[p.name, p.kind, n, last.isoformat(sep=" ", timespec="seconds") if last else "",
             p.created_by or ""] for p, n, last in repo.metadata.list_pipelines()]
    console.print(table("pipelines", ["name", "kind", "runs", "last run", "created by"], rows)
                  if rows else "no pipelines yet: run one, or `collab quickstart` for a tour")


@click.group()
def runs() -> None:
    """Runs of pipelines."""


@runs.command("list")
@click.argument("pipeline", required=False)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
def runs_list(pipeline: str | None, limit: int) -> None:
    """List recent runs, of PIPELINE or of all pipelines."""
    from zenml_collab.core.repository import Repository

    repo = Repository()
    records = repo.metadata.list_runs(pipeline, limit=limit)
    rows = [[r.id[:12], r.pipeline_name, styled(r.status),
             r.started_at.isoformat(sep=" ", timespec="seconds"), (r.git_sha or "")[:10]
             + ("*" if r.git_dirty else ""), r.user or ""] for r in records]
    if not rows:
        console.print("no runs yet" + (f" of {pipeline!r}" if pipeline else ""))
        return
    console.print(table("runs", ["id", "pipeline", "status", "started (UTC)", "git", "user"], rows))


@runs.command("show")
@click.argument("run_id")
def runs_show(run_id: str) -> None:
    """Show RUN's steps: executed or cached, why, and how long each took."""
    from zenml_collab.core.repository import Repository

    repo = Repository()
    result = repo.get_run(run_id)
    console.print(steps_table(result))
    console.print(f"status: {styled(result.status)}   git: {result.git_sha or '-'}"
                  f"{' (dirty)' if result.git_dirty else ''}   user: {result.user or '-'}")


@runs.command("gc")
@click.option("--older-than", default="1h", show_default=True,
              help="Remove staging/download directories untouched for this long (90s, 30m, "
                   "1h, 2d). Younger ones may belong to a save still in progress.")
@click.option("--dry-run", is_flag=True, help="Report what would be done, change nothing.")
def runs_gc(older_than: str, dry_run: bool) -> None:
    """Mark runs whose process is gone as abandoned; remove stale temporary directories."""
    from zenml_collab.config import LOCAL_DIR
    from zenml_collab.core.housekeeping import parse_duration, remove_stale_tmp
    from zenml_collab.core.repository import Repository

    min_age = parse_duration(older_than)
    repo = Repository()
    if dry_run:
        gone = [r for r in repo.metadata.list_runs(limit=10_000) if r.status == "abandoned"]
    else:
        gone = repo.metadata.mark_abandoned()
    for record in gone:
        console.print(f"{'would mark' if dry_run else 'marked'} run {record.id[:12]} of "
                      f"{record.pipeline_name!r} abandoned (pid {record.pid} on "
                      f"{record.hostname or '?'}, started {record.started_at:%Y-%m-%d %H:%M})")
    tmp_dirs = [repo.root / LOCAL_DIR / "artifacts" / ".tmp",
                repo.root / LOCAL_DIR / "cache" / ".tmp"]
    uri = repo.settings.artifacts.uri
    if "://" not in uri:
        local = Path(uri).expanduser()
        tmp_dirs.append((local if local.is_absolute() else repo.root / local) / ".tmp")
    cleanup = remove_stale_tmp(tmp_dirs, min_age_s=min_age, dry_run=dry_run)
    console.print(f"runs: {len(gone)} abandoned {'found' if dry_run else 'marked'}; "
                  f"temporary directories: {len(cleanup.removed)} "
                  f"{'would be ' if dry_run else ''}removed, {_size(cleanup.bytes_freed)} "
                  f"{'would be ' if dry_run else ''}freed"
                  + (f", {cleanup.kept} younger than {older_than} kept" if cleanup.kept else ""))


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


@click.group()
def db() -> None:
    """The metadata store's schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the metadata store to this version's schema."""
    from zenml_collab.core.repository import Repository
    from zenml_collab.core.stores import open_metadata_store

    repo = Repository()
    store = open_metadata_store(repo.settings.metadata, repo.root,
                                credentials_file=repo.settings.local.credentials_file)
    expected = repo.settings.metadata.store_id
    if expected is not None:
        store.check_identity(expected)  # never create or migrate another database
    before, after = store.upgrade()
    if before == after:
        console.print(f"{store.description}: already at schema {after}")
    else:
        console.print(f"{store.description}: upgraded schema {before or '(empty)'} -> {after}")


@db.command("status")
def db_status() -> None:
    """Show the metadata store's schema revision."""
    from zenml_collab.core.metadata.schema import HEAD_REVISION, SchemaState
    from zenml_collab.core.repository import Repository
    from zenml_collab.core.stores import open_metadata_store

    repo = Repository()
    store = open_metadata_store(repo.settings.metadata, repo.root,
                                credentials_file=repo.settings.local.credentials_file)
    state = store.schema_state()
    if state is SchemaState.FOREIGN:
        store.revision()  # raises the clear "not a zenml-collab store" error
    current = store.revision()
    advice = {SchemaState.EMPTY: "empty: created on first use",
              SchemaState.CURRENT: "current",
              SchemaState.AHEAD: "newer than this zenml-collab: upgrade the package",
              SchemaState.BEHIND: "run `collab db upgrade`"}[state]
    expected = repo.settings.metadata.store_id
    if expected is not None:
        store.check_identity(expected)
    console.print(f"{store.description}: schema {current or '(empty)'}, "
                  f"this version needs {HEAD_REVISION} ({advice})"
                  + (f"; store id {store.store_id()}" if store.store_id() else ""))
