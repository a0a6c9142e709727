"""A local stand-in for the Cloud SQL Auth Proxy v2 image, for tests without a registry.

The image is a ``docker import`` of a tiny rootfs: Debian's static busybox (plus socat and its
libraries when the host has it) and :data:`ENTRYPOINT`, a shell script that

* accepts the real proxy's command line (instance connection name, ``--address``, ``--port``,
  ``--auto-iam-authn``, ``--health-check``, ``--http-address``, ``--http-port``, ...) and rejects
  unknown flags, as the real one does;
* fails like the real proxy when ``GOOGLE_APPLICATION_CREDENTIALS`` names an unreadable file;
* listens on ``--address``:``--port`` only (socat ``bind=``), so the exposure tests see what
  the real proxy would expose; busybox ``nc`` (which binds every address) is the fallback for
  ``--address 0.0.0.0`` when the host has no socat;
* forwards the database port to ``--standin-target`` (or ``$COLLAB_STANDIN_TARGET``):
  ``unix:/path/to/mysqld.sock`` or ``host:port``; with no target it answers every connection
  with one line ``collab-standin-proxy <connection name>``;
* serves ``/readiness``, ``/liveness`` and ``/startup`` with busybox ``httpd`` on
  ``--http-address``:``--http-port`` once the forwarder listens, only with ``--health-check``
  (like the real proxy).

Usage::

    tag = build_standin_image(docker_client, "collab-test/cloud-sql-proxy:standin")
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

STANDIN_LABEL = "dev.zenml-collab.standin-proxy"

ENTRYPOINT = r"""#!/bin/sh
# Stand-in for cloud-sql-proxy v2 (tests only). Same flags, same health endpoints.
conn=""; addr=127.0.0.1; port=""; http_addr=localhost; http_port=9090; health=0
target="${COLLAB_STANDIN_TARGET:-}"
die() { echo "Error: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  arg="$1"; shift
  case "$arg" in
    --address|--port|--http-address|--http-port|--standin-target|--credentials-file| \
    --max-connections|--max-sigterm-delay|--unix-socket|--login-token|--token| \
    --impersonate-service-account)
      [ $# -gt 0 ] || die "flag needs an argument: $arg"; val="$1"; shift;;
    --*=*) val="${arg#*=}"; arg="${arg%%=*}";;
    *) val="";;
  esac
  case "$arg" in
    --address) addr="$val";;
    --port) port="$val";;
    --http-address) http_addr="$val";;
    --http-port) http_port="$val";;
    --health-check) health=1;;
    --standin-target) target="$val";;
    --credentials-file) GOOGLE_APPLICATION_CREDENTIALS="$val";;
    --auto-iam-authn|--private-ip|--psc|--structured-logs|--quiet|--debug-logs) ;;
    --run-connection-test|--lazy-refresh) ;;
    --max-connections|--max-sigterm-delay|--unix-socket|--login-token|--token) ;;
    --impersonate-service-account) ;;
    -*) die "unknown flag: $arg";;
    *) [ -z "$conn" ] || die "only one instance is supported by the stand-in"; conn="$arg";;
  esac
done
[ -n "$conn" ] || die "missing instance_connection_name (e.g. project:region:instance)"
case "$conn" in *:*:*) ;; *) die "invalid instance connection name \"$conn\"";; esac
[ -n "$port" ] || port=3306
if [ -n "$GOOGLE_APPLICATION_CREDENTIALS" ]; then
  [ -r "$GOOGLE_APPLICATION_CREDENTIALS" ] || \
    die "failed to read credentials file $GOOGLE_APPLICATION_CREDENTIALS"
  echo "Authorizing with the credentials file at \"$GOOGLE_APPLICATION_CREDENTIALS\""
fi
export STANDIN_CONN="$conn"
pids=""
trap 'echo "SIGTERM signal received. Shutting down..."; kill $pids 2>/dev/null; exit 0' TERM INT
case "$target" in
  unix:*) to="UNIX-CONNECT:${target#unix:}";;
  "") to="EXEC:/standin/banner";;
  *:*) to="TCP:${target%:*}:${target##*:}";;
  *) die "bad --standin-target \"$target\"";;
esac
if command -v socat >/dev/null; then
  # socat binds --address only, like the real proxy.
  socat "TCP-LISTEN:$port,bind=$addr,fork,reuseaddr" "$to" &
elif [ "$addr" = 0.0.0.0 ] && [ -z "$target" ]; then
  nc -ll -p "$port" -e /standin/banner &  # busybox nc binds every address: only for 0.0.0.0
elif [ "$addr" = 0.0.0.0 ] && [ "${to%%:*}" = TCP ]; then
  nc -ll -p "$port" -e nc "${target%:*}" "${target##*:}" &
else
  die "this stand-in image has no socat: it cannot listen on $addr only (or forward to $target)"
fi
pids="$pids $!"
sleep 0.2
kill -0 $! 2>/dev/null || die "could not listen on $addr:$port"
echo "[$conn] Listening on $addr:$port"
if [ "$health" = 1 ]; then
  mkdir -p /tmp/standin-www
  for page in readiness liveness startup; do echo ok > "/tmp/standin-www/$page"; done
  # static busybox cannot resolve names; the real proxy's default is "localhost"
  [ "$http_addr" = localhost ] && http_addr=127.0.0.1
  httpd -f -p "$http_addr:$http_port" -h /tmp/standin-www &
  pids="$pids $!"
fi
echo "The proxy has started successfully and is ready for new connections!"
while :; do wait; sleep 1; done
"""

BANNER = """#!/bin/sh
echo "collab-standin-proxy $STANDIN_CONN"
"""

_APPLETS = ("sh", "nc", "httpd", "sleep", "echo", "cat", "kill", "mkdir", "ls", "env", "id")


def _shared_libs(binary: Path) -> list[Path]:
    """The shared libraries (and loader) a dynamically linked binary needs; [] when static."""
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    libs: list[Path] = []
    for line in result.stdout.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0] if parts else ""
        if path.startswith("/"):
            libs.append(Path(path))
    return libs


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, int(time.time())
    tar.addfile(info)


def _add_binary(tar: tarfile.TarFile, source: Path, dest: str, seen: set[str]) -> None:
    _add_file(tar, dest, source.read_bytes())
    for lib in _shared_libs(source):
        real = lib.resolve()
        if str(lib) in seen:
            continue
        seen.add(str(lib))
        # The loader path recorded in the binary is what the kernel opens: keep the name.
        _add_dir_chain(tar, str(lib.parent), seen)
        _add_file(tar, str(lib), real.read_bytes())


def _add_dir_chain(tar: tarfile.TarFile, directory: str, seen: set[str]) -> None:
    parts = Path(directory).parts[1:]
    for i in range(1, len(parts) + 1):
        path = "/" + "/".join(parts[:i])
        if path not in seen:
            seen.add(path)
            _add_dir(tar, path)


def rootfs_tar() -> bytes:
    """The stand-in's root filesystem as an uncompressed tar."""
    busybox = Path(shutil.which("busybox") or "/bin/busybox")
    if not busybox.exists():
        raise FileNotFoundError("busybox not found: install Debian's busybox-static")
    buffer = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("/bin", "/standin", "/etc"):
            _add_dir_chain(tar, directory, seen)
        _add_dir(tar, "/tmp", 0o1777)
        _add_binary(tar, busybox.resolve(), "/bin/busybox", seen)
        for applet in _APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        socat = shutil.which("socat")
        if socat:
            _add_binary(tar, Path(socat).resolve(), "/bin/socat", seen)
        _add_file(tar, "/standin/entrypoint.sh", ENTRYPOINT.encode())
        _add_file(tar, "/standin/banner", BANNER.encode())
        _add_file(tar, "/etc/passwd", b"root:x:0:0:root:/:/bin/sh\n", 0o644)
        _add_file(tar, "/etc/group", b"root:x:0:\n", 0o644)
    return buffer.getvalue()


def build_standin_image(client: Any, tag: str) -> str:
    """Import the stand-in rootfs into ``client``'s daemon as ``tag``; return the tag."""
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    client.api.import_image_from_data(
        rootfs_tar(),
        repository=repository,
        tag=version,
        changes=[
            'ENTRYPOINT ["/standin/entrypoint.sh"]',
            "ENV PATH=/bin",
            f"LABEL {STANDIN_LABEL}=1",
        ],
    )
    return f"{repository}:{version}"
