"""An offline stand-in for ``python:<minor>-slim`` plus zenml-collab's dependencies (tests only).

Tests cannot pull from a registry, and the containers they start have no route off the host, so
``pip install`` inside an image build cannot download anything. This module builds the image
from what the host already has:

* the host interpreter (``sys.base_prefix``: the binary, ``libpython``, the standard library),
  kept at the same absolute path because the binary's RUNPATH is absolute;
* the installed distributions zenml-collab depends on (its requirement closure, plus pip,
  setuptools and wheel so an image build can ``pip install`` the project's wheel), minus their
  test suites and most of google-api-python-client's bundled discovery documents;
* every shared library those binaries load (``ldd``), and Debian's static busybox for ``/bin/sh``
  (a Dockerfile's ``RUN`` needs a shell).

The root filesystem tar is cached under ``~/.cache/zenml-collab/base-images/`` keyed by the
Python version and the exact distribution versions, so only the first run after a dependency
change pays for it; each test run's private dockerd then ``docker import``s it once.

``collab image build --base <this tag> --no-index`` installs zenml-collab from the working tree
on top (see :mod:`zenml_collab.core.backends.image`). Real users build on the public base image.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

TAG = "collab-test/python-base"
LAYOUT_VERSION = "3"  # bump when the rootfs layout changes
KEEP_DISCOVERY = ("sqladmin.", "storage.v1", "aiplatform.v1.", "cloudresourcemanager.v3",
                  "iam.v1.", "serviceusage.v1.", "artifactregistry.v1.")
# Compiled bytecode is kept (tar keeps the sources' mtimes, so it stays valid): every container
# starts from the image, and compiling the stdlib and pandas at each start costs seconds.
_SKIP_PARTS = frozenset({"tests"})
_STDLIB_SKIP = frozenset({"test", "idlelib", "tkinter", "turtledemo", "site-packages",
                          "lib2to3", "ensurepip", "config-3.11-x86_64-linux-gnu"})


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_closure(root: str = "zenml-collab") -> dict[str, md.Distribution]:
    """Installed distributions ``root`` needs (markers evaluated, no extras), ``root`` excluded."""
    from packaging.requirements import Requirement

    seen: dict[str, md.Distribution] = {}
    done: set[tuple[str, str]] = set()  # (distribution, extra) pairs already expanded
    todo: list[tuple[str, str]] = [(root, ""), ("pip", ""), ("setuptools", ""), ("wheel", "")]
    while todo:
        name, extra = todo.pop()
        key = _key(name)
        if (key, extra) in done:
            continue
        done.add((key, extra))
        try:
            dist = seen.get(key) or md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen[key] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                todo.append((req.name, ""))
                todo.extend((req.name, e) for e in req.extras)
    seen.pop(_key(root), None)
    return seen


def cache_key(dists: dict[str, md.Distribution]) -> str:
    pins = sorted(f"{k}=={d.version}" for k, d in dists.items())
    text = "\n".join([LAYOUT_VERSION, sys.version, sys.base_prefix, *pins])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _keep(rel: Path) -> bool:
    parts = rel.parts
    if _SKIP_PARTS & set(parts) or ".." in parts:
        return False
    if "discovery_cache" in parts and parts[-1].endswith(".json"):
        return parts[-1].startswith(KEEP_DISCOVERY)
    return True


def _files(dists: dict[str, md.Distribution]) -> list[tuple[Path, str]]:
    """(source, path in the image) of the interpreter, its stdlib and the distributions."""
    prefix = Path(sys.base_prefix)
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    out: list[tuple[Path, str]] = []
    binary = prefix / "bin" / ver
    out.append((binary, str(binary)))
    for lib in (prefix / "lib").glob("libpython*.so*"):
        out.append((lib, str(lib)))
    stdlib = prefix / "lib" / ver
    for path in stdlib.rglob("*"):
        rel = path.relative_to(stdlib)
        if rel.parts and rel.parts[0] in _STDLIB_SKIP:
            continue
        if path.is_file():
            out.append((path, str(path)))
    site = stdlib / "site-packages"
    for dist in dists.values():
        for entry in dist.files or []:
            rel = Path(str(entry))
            if not _keep(rel):
                continue
            source = Path(str(dist.locate_file(entry)))
            if source.is_file():
                out.append((source, str(site / rel)))
    return out


def _shared_libs(paths: list[Path]) -> set[Path]:
    """System libraries (outside the interpreter's prefix) the ELF files in ``paths`` load."""
    elves = [p for p in paths if p.suffix == ".so" or ".so." in p.name or p.name.startswith("python")]
    found: set[Path] = set()
    prefix = str(Path(sys.base_prefix))
    for start in range(0, len(elves), 200):
        done = subprocess.run(["ldd", *map(str, elves[start:start + 200])], capture_output=True,
                              text=True, check=False)
        for line in done.stdout.splitlines():
            parts = line.split()
            path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0] if parts else ""
            if path.startswith("/") and not path.startswith(prefix) and ":" not in path:
                found.add(Path(path))
    return found


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.type, info.linkname = tarfile.SYMTYPE, target
    tar.addfile(info)


def write_rootfs(dest: Path, dists: dict[str, md.Distribution]) -> None:
    """Write the root filesystem tar to ``dest`` (atomically)."""
    files = _files(dists)
    libs = _shared_libs([src for src, _ in files])
    busybox = Path(shutil.which("busybox") or "/bin/busybox")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    added: set[str] = set()
    with tarfile.open(tmp, "w") as tar:
        for directory in ("/bin", "/tmp", "/etc", "/usr/local/bin", "/root", "/lib64"):
            info = tarfile.TarInfo(directory.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "/tmp" else 0o755
            tar.addfile(info)
        for source, name in files:
            if name not in added:
                added.add(name)
                tar.add(str(source), arcname=name.lstrip("/"), recursive=False)
        for lib in sorted(libs):
            tar.add(str(lib.resolve()), arcname=str(lib).lstrip("/"), recursive=False)
        tar.add(str(busybox.resolve()), arcname="bin/busybox", recursive=False)
        for applet in ("sh", "ls", "cat", "echo", "sleep", "env", "mkdir", "rm", "cp", "tar"):
            _link(tar, f"bin/{applet}", "busybox")
        ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
        binary = str(Path(sys.base_prefix) / "bin" / ver)
        for alias in (ver, "python3", "python"):
            _link(tar, f"usr/local/bin/{alias}", binary)
        _link(tar, "usr/local/bin/pip", "/usr/local/bin/pip3")
        _add(tar, "usr/local/bin/pip3", f"#!/bin/sh\nexec {binary} -m pip \"$@\"\n".encode(), 0o755)
        _add(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        _add(tar, "etc/group", b"root:x:0:\n")
    os.replace(tmp, dest)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zenml-collab" / "base-images"


def rootfs_path() -> Path:
    """The cached rootfs tar for this interpreter and these dependencies (built if missing)."""
    dists = requirement_closure()
    path = cache_dir() / f"{cache_key(dists)}.tar"
    try:
        os.utime(path)  # in use: prune_stale keeps what was used recently
    except FileNotFoundError:  # not built yet (or pruned by another interpreter just now)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_rootfs(path, dists)
    except PermissionError:
        pass  # a read-only shared cache: use it, leave its pruning to its owner
    prune_stale(path)
    return path


#: A rootfs of another dependency set (an upgrade, another interpreter sharing the cache)
#: unused this long is deleted: each is ~800 MiB.
STALE_AFTER_S = 7 * 24 * 3600.0


def prune_stale(keep: Path, *, stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete the cached rootfs tars other than ``keep`` unused for ``stale_after_s``;
    returns them. A build in progress writes a ``.tmp`` file, never matched here."""
    removed = []
    now = time.time()
    for other in keep.parent.glob("*.tar"):
        try:
            if other != keep and now - other.stat().st_mtime > stale_after_s:
                other.unlink()
                removed.append(other)
        except OSError:
            continue  # another process pruned it first, or the cache is not ours to prune
    return removed


def ensure_base_image(client: Any) -> str:
    """Import the cached rootfs into ``client``'s daemon (once); return the image tag."""
    path = rootfs_path()
    tag = f"{TAG}:{path.stem}"
    try:
        client.images.get(tag)
        return tag
    except Exception:  # docker.errors.ImageNotFound; docker is imported lazily
        pass
    with path.open("rb") as fh:
        client.api.import_image(
            src=fh, repository=TAG, tag=path.stem,
            changes=["ENV PATH=/usr/local/bin:/bin", "ENV HOME=/root", "WORKDIR /root",
                     'CMD ["python3"]'])
    return tag


def main(argv: list[str] | None = None) -> int:
    """``python -m zenml_collab.testing.base_image [import]``: build (and import) the image."""
    args = sys.argv[1:] if argv is None else argv
    started = time.monotonic()
    path = rootfs_path()
    print(f"rootfs {path} ({path.stat().st_size >> 20} MiB, {time.monotonic() - started:.1f}s)")
    if args[:1] == ["import"]:
        import docker

        client = docker.from_env()
        started = time.monotonic()
        print(ensure_base_image(client), f"imported in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
