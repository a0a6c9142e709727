"""Checks of the member's repository: git, collab.yaml, the ignored .collab/, no secrets."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from zenml_collab.actions.doctor.context import DoctorContext
from zenml_collab.actions.doctor.model import Check, CheckResult, failed, passed, warned
from zenml_collab.config import LOCAL_DIR, LOCAL_FILE, TEAM_FILE, file_mode
from zenml_collab.errors import CollabError

MAX_SCANNED_FILES = 5000
MAX_SCANNED_BYTES = 1_000_000  # per file: secrets live in small text files
# What a committed secret looks like: private keys, service-account keys, OAuth refresh
# tokens and access tokens. Kept specific so a normal repository reports nothing.
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("a private key", re.compile(rb"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?"
                                 rb"PRIVATE KEY-----")),
    ("a service-account key", re.compile(rb'"private_key_id"\s*:\s*"[0-9a-f]{16,}"')),
    ("an OAuth refresh token", re.compile(rb'"refresh_token"\s*:\s*"[^"]{16,}"')),
    ("a Google access token", re.compile(rb"\bya29\.[0-9A-Za-z_\-]{20,}")),
)


def check_git(ctx: DoctorContext) -> CheckResult:
    root = ctx.git_root()
    if root is None:
        return failed(f"{ctx.start} is not inside a git repository",
                      "run `git init` (or `git clone` the team's repository) and re-run")
    return passed(f"git repository at {root}")


def check_config(ctx: DoctorContext) -> CheckResult:
    root = ctx.root()
    if not (root / TEAM_FILE).is_file():
        return failed(f"{root} has no {TEAM_FILE}",
                      "pull the team's collab.yaml (`git pull`), or ask the admin to run "
                      "`collab bootstrap` and commit it")
    settings = ctx.settings()  # raises ConfigError naming the file, key and fix
    local = root / LOCAL_DIR / LOCAL_FILE
    if local.is_file() and file_mode(local) & 0o077:
        return warned(f"{local} is readable by others (mode {file_mode(local):04o}); it may "
                      "hold a database password", f"`chmod 600 {local}`")
    gcp = settings.team.gcp
    where = (f"project {gcp.project}, instance {gcp.instance}, bucket {gcp.bucket}"
             if gcp else "no gcp section: a local setup")
    return passed(f"{TEAM_FILE} is valid ({where}); metadata {settings.metadata.kind}, "
                  f"artifacts {settings.artifacts.uri}")


def check_ignored(ctx: DoctorContext) -> CheckResult:
    from zenml_collab.actions.init import ignore_target, is_ignored

    root = ctx.git_root()
    assert root is not None  # repo.git passed
    if is_ignored(root):
        return passed(f"git ignores {LOCAL_DIR}/")
    target = ignore_target(root)
    return failed(f"git does not ignore {LOCAL_DIR}/: your local.yaml (and any password in it) "
                  "could be committed",
                  f"add the line `{LOCAL_DIR}/` to {target} (`collab doctor --fix` does it)",
                  auto_fix="ignore")


def _tracked(root: Path) -> list[str]:
    try:
        done = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CollabError(f"cannot list the tracked files: {exc}",
                          "check that `git ls-files` works here") from None
    if done.returncode != 0:
        raise CollabError(f"`git ls-files` failed: {done.stderr.decode(errors='replace')}",
                          "check that `git status` works here")
    return [name for name in done.stdout.decode(errors="replace").split("\0") if name]


def find_secrets(root: Path, names: list[str]) -> list[tuple[str, str]]:
    """``(file, what)`` for each tracked file that holds something secret-looking."""
    hits: list[tuple[str, str]] = []
    for name in names[:MAX_SCANNED_FILES]:
        if name.startswith(f"{LOCAL_DIR}/"):
            hits.append((name, f"a file of {LOCAL_DIR}/ (member-local, may hold a password)"))
            continue
        path = root / name
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_SCANNED_BYTES)
        except OSError:  # deleted in the work tree, a submodule, a broken link
            continue
        for what, pattern in SECRET_PATTERNS:
            if pattern.search(data):
                hits.append((name, what))
                break
    return hits


def check_secrets(ctx: DoctorContext) -> CheckResult:
    root = ctx.git_root()
    assert root is not None  # repo.git passed
    names = _tracked(root)
    hits = find_secrets(root, names)
    if not hits:
        return passed(f"no secret found in {min(len(names), MAX_SCANNED_FILES)} tracked files")
    shown = "; ".join(f"{name} ({what})" for name, what in hits[:5])
    more = f" and {len(hits) - 5} more" if len(hits) > 5 else ""
    files = " ".join(name for name, _ in hits[:5])
    return failed(f"secrets in tracked files: {shown}{more}",
                  f"stop tracking them: `git rm --cached {files}` and commit; then revoke and "
                  "replace each key or token (it stays in the git history): "
                  "`gcloud iam service-accounts keys delete KEY_ID --iam-account SA`")


CHECKS = (
    Check("repo.git", "git repository", check_git, timeout=5),
    Check("repo.config", "collab.yaml present and valid", check_config, timeout=5),
    Check("repo.ignored", ".collab/ ignored by git", check_ignored, ("repo.git",), timeout=5),
    Check("repo.secrets", "no secret in tracked files", check_secrets, ("repo.git",), timeout=15),
)
