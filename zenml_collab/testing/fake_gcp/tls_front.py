"""The fake Cloud SQL server side: a CA, ephemeral-cert signing, and a TLS front for MySQL.

cloud-sql-python-connector opens TLS 1.3 to ``<ipAddress>:3307`` (the port is fixed in the
connector), presenting the ephemeral cert the fake signed and trusting ``serverCaCert``. The
front terminates that TLS, checks the client cert, optionally checks an IAM database login, and
pipes the MySQL protocol to a real server (MariaDB in tests). Port 3307 cannot be chosen, so each
front takes its own loopback address (127.0.0.N) instead of its own port.
"""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONNECTOR_PORT = 3307


@dataclass(frozen=True)
class CertGrant:
    """What the fake remembers about an ephemeral cert it signed."""

    project: str
    instance: str
    email: str
    access_token: str | None  # set when the connector asked for IAM database authentication


class CertificateAuthority:
    """A throwaway CA that signs the TLS front's cert and every ephemeral client cert."""

    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake Cloud SQL Server CA")])
        now = datetime.datetime.now(datetime.UTC)
        self.name = name
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )

    @property
    def pem(self) -> str:
        from cryptography.hazmat.primitives import serialization

        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, public_key: Any, common_name: str, lifetime: datetime.timedelta) -> Any:
        """An end-entity cert for ``public_key`` (a cryptography key object)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.name).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + lifetime)
            .sign(self._key, hashes.SHA256())
        )

    def sign_pem(self, public_key_pem: str, common_name: str,
                 lifetime: datetime.timedelta = datetime.timedelta(hours=1)) -> tuple[str, int]:
        """Sign a PEM public key; returns the cert PEM and its serial number."""
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_public_key(public_key_pem.encode())
        cert = self.sign(key, common_name, lifetime)
        return cert.public_bytes(serialization.Encoding.PEM).decode(), cert.serial_number

    def server_context(self, workdir: Path) -> ssl.SSLContext:
        """TLS 1.3 server context presenting a CA-signed cert and requiring a client cert."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.sign(key.public_key(), "fake-cloudsql-front", datetime.timedelta(days=30))
        cert_path, key_path = workdir / "front.crt", workdir / "front.key"
        ca_path = workdir / "ca.crt"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.touch(mode=0o600)
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        ca_path.write_text(self.pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(cert_path, key_path)
        ctx.load_verify_locations(ca_path)
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


# (grant, mysql login user) -> None to allow, or an error text to refuse the login with
LoginCheck = Callable[[CertGrant, str], str | None]
# grant -> (host, port) of the MySQL server behind the instance, or None
BackendLookup = Callable[[CertGrant], tuple[str, int] | None]


class TlsFront:
    """Accepts connector TLS on ``<ip>:3307`` and pipes it to the instance's MySQL backend."""

    def __init__(self, ca: CertificateAuthority, grants: Callable[[int], CertGrant | None],
                 backend: BackendLookup, check_login: LoginCheck) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-cloudsql-")
        self._ctx = ca.server_context(Path(self._tmp.name))
        self._grants, self._backend, self._check_login = grants, backend, check_login
        self._sock, self.ip = self._bind()
        self.connections = 0
        self.refusals: list[str] = []
        self._stopped = threading.Event()
        threading.Thread(target=self._accept_loop, name="fake-cloudsql-front", daemon=True).start()

    @staticmethod
    def _bind() -> tuple[socket.socket, str]:
        for last in range(2, 255):
            ip = f"127.0.0.{last}"
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((ip, CONNECTOR_PORT))
            except OSError:
                sock.close()
                continue
            sock.listen(16)
            return sock, ip
        raise RuntimeError(f"no free loopback address with port {CONNECTOR_PORT} available")

    def stop(self) -> None:
        self._stopped.set()
        self._sock.close()
        self._tmp.cleanup()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                raw, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            tls = self._ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.refusals.append(f"TLS handshake failed: {exc}")
            raw.close()
            return
        with tls:
            peer = tls.getpeercert()
            grant = self._grants(int(str(peer["serialNumber"]), 16)) if peer else None
            target = self._backend(grant) if grant else None
            if grant is None or target is None:
                self.refusals.append("unknown client cert or instance without a backend")
                return
            try:
                backend = socket.create_connection(target, timeout=10)
            except OSError as exc:
                self.refusals.append(f"backend unreachable: {exc}")
                return
            self.connections += 1
            with backend:
                self._pipe(tls, backend, grant)

    def _pipe(self, tls: ssl.SSLSocket, backend: socket.socket, grant: CertGrant) -> None:
        backend.settimeout(None)
        down = threading.Thread(target=_copy, args=(backend, tls), daemon=True)
        down.start()
        try:
            first = _read_packet(tls)  # the client's HandshakeResponse: it names the DB user
            if first is None:
                return
            if grant.access_token is not None:
                refusal = self._check_login(grant, _login_user(first))
                if refusal is not None:
                    self.refusals.append(refusal)
                    tls.sendall(_error_packet(first[3] + 1, 1045, "28000", refusal))
                    return
            backend.sendall(first)
            _copy(tls, backend)
        finally:
            for sock in (backend, tls):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            down.join(timeout=5)


def _copy(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _read_packet(sock: socket.socket) -> bytes | None:
    header = _read_exact(sock, 4)
    if header is None:
        return None
    body = _read_exact(sock, int.from_bytes(header[:3], "little"))
    return None if body is None else header + body


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _error_packet(seq: int, code: int, sqlstate: str, message: str) -> bytes:
    body = b"\xff" + code.to_bytes(2, "little") + b"#" + sqlstate.encode() + message.encode()
    return len(body).to_bytes(3, "little") + bytes([seq % 256]) + body


def _login_user(packet: bytes) -> str:
    # HandshakeResponse41: 4-byte header, capabilities(4), max packet(4), charset(1),
    # 23 reserved bytes, then the NUL-terminated user name.
    start = 4 + 4 + 4 + 1 + 23
    end = packet.find(b"\x00", start)
    return packet[start:end].decode(errors="replace")
