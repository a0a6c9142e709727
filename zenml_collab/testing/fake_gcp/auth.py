"""OAuth2 for the fake: service-account key files, the token endpoint, bearer verification.

google-auth signs a JWT with the key file's private key and posts it to ``token_uri`` (the
fake's ``/token``); the fake checks the signature with the public half it kept and hands out an
opaque access token bound to that member. GAPIC REST clients skip the token endpoint and send a
self-signed JWT as the bearer; that is verified the same way.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class Member:
    """A principal the fake can authenticate: its email, kind and signing key."""

    email: str
    kind: str  # "serviceAccount" or "user"
    key_id: str
    private_pem: str
    public_key: Any = field(repr=False)
    refresh_token: str | None = None

    @property
    def principal(self) -> str:
        return f"{self.kind}:{self.email}"


@dataclass
class Token:
    email: str
    expiry: float
    scopes: tuple[str, ...]


class TokenError(Exception):
    """The token endpoint refuses a grant; ``body`` is the OAuth2 error JSON."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.body = {"error": error, "error_description": description}


# RSA keys are slow to make (~0.1 s each) and nothing is learned from fresh ones, so every fake
# in a process draws its members' keys from one pool: member n of any fake gets key n.
_KEY_POOL: list[Any] = []
_KEY_POOL_LOCK = threading.Lock()


def _pooled_key(index: int) -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    with _KEY_POOL_LOCK:
        while len(_KEY_POOL) <= index:
            _KEY_POOL.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _KEY_POOL[index]


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class Authority:
    """Members and the access tokens issued to them."""

    def __init__(self, token_lifetime: int = 3600) -> None:
        self.token_lifetime = token_lifetime
        self._lock = threading.Lock()
        self._members: dict[str, Member] = {}
        self._by_key: dict[str, Member] = {}
        self._tokens: dict[str, Token] = {}
        self.issued = 0  # how many tokens the endpoint handed out (refreshes included)

    def add_member(self, email: str, kind: str = "serviceAccount") -> Member:
        """Register ``email`` with its own RSA key and key id (idempotent)."""
        from cryptography.hazmat.primitives import serialization

        with self._lock:
            if email in self._members:
                return self._members[email]
            index = len(self._members)
        key = _pooled_key(index)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        member = Member(email, kind, secrets.token_hex(20), pem, key.public_key(),
                        refresh_token=secrets.token_urlsafe(24) if kind == "user" else None)
        with self._lock:
            self._members.setdefault(email, member)
            self._by_key[member.key_id] = self._members[email]
            return self._members[email]

    def member(self, email: str) -> Member | None:
        with self._lock:
            return self._members.get(email)

    def write_key_file(self, member: Member, directory: Path, project: str, token_uri: str) -> Path:
        """The member's credentials file (service-account key or authorized-user), mode 0600."""
        directory.mkdir(parents=True, exist_ok=True)
        if member.kind == "serviceAccount":
            info: dict[str, str] = {
                "type": "service_account", "project_id": project,
                "private_key_id": member.key_id, "private_key": member.private_pem,
                "client_email": member.email, "client_id": str(abs(hash(member.email))),
                "token_uri": token_uri,
            }
        else:
            info = {"type": "authorized_user", "client_id": "fake-client",
                    "client_secret": "fake-secret", "refresh_token": member.refresh_token or "",
                    "token_uri": token_uri, "quota_project_id": project}
        path = directory / f"{member.email.replace('@', '_at_')}.json"
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(json.dumps(info, indent=2))
        return path

    def mint(self, email: str, scopes: tuple[str, ...] = ()) -> str:
        """Issue an access token for ``email`` directly (for tests that build credentials)."""
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = Token(email, time.time() + self.token_lifetime, scopes)
            self.issued += 1
        return token

    def expire_tokens(self, email: str | None = None) -> int:
        """Expire every issued token (of ``email`` only, if given); returns how many."""
        with self._lock:
            hit = [t for t in self._tokens.values() if email in (None, t.email)]
            for token in hit:
                token.expiry = 0
            return len(hit)

    def grant(self, form_body: bytes) -> dict[str, Any]:
        """The token endpoint: exchange a signed JWT or a refresh token for an access token."""
        form = {k: v[0] for k, v in parse_qs(form_body.decode()).items()}
        grant_type = form.get("grant_type")
        if grant_type == JWT_BEARER:
            claims = self.verify_jwt(form.get("assertion", ""))
            if claims is None:
                raise TokenError("invalid_grant", "Invalid JWT Signature.")
            scopes = tuple(str(claims.get("scope", "")).split())
            email = str(claims.get("sub") or claims["iss"])
        elif grant_type == "refresh_token":
            email = self._user_for_refresh_token(form.get("refresh_token", ""))
            scopes = tuple(form.get("scope", "").split())
        else:
            raise TokenError("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        token = self.mint(email, scopes)
        return {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}

    def _user_for_refresh_token(self, refresh_token: str) -> str:
        with self._lock:
            for member in self._members.values():
                if member.refresh_token and secrets.compare_digest(
                    member.refresh_token, refresh_token
                ):
                    return member.email
        raise TokenError("invalid_grant", "Bad Request")

    def verify_jwt(self, jwt: str) -> dict[str, Any] | None:
        """Claims of a JWT signed by a member's key and not expired, else None."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            header_b64, claims_b64, sig_b64 = jwt.split(".")
            header = json.loads(_b64decode(header_b64))
            claims = json.loads(_b64decode(claims_b64))
        except ValueError:
            return None
        with self._lock:
            member = self._by_key.get(header.get("kid", "")) or self._members.get(
                claims.get("iss", ""))
        if member is None or claims.get("iss") != member.email:
            return None
        try:
            member.public_key.verify(_b64decode(sig_b64), f"{header_b64}.{claims_b64}".encode(),
                                     padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return None
        if float(claims.get("exp", 0)) < time.time():
            return None
        return claims

    def identify(self, authorization: str | None) -> Member | None:
        """The member behind an ``Authorization: Bearer ...`` header, or None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        bearer = authorization[len("Bearer "):].strip()
        with self._lock:
            token = self._tokens.get(bearer)
            if token is not None:
                return self._members.get(token.email) if token.expiry > time.time() else None
        if bearer.count(".") == 2:
            claims = self.verify_jwt(bearer)
            if claims is not None:
                return self.member(str(claims["iss"]))
        return None

    def token_info(self, bearer: str) -> Token | None:
        """A live issued token (used by the TLS front to check IAM database logins)."""
        with self._lock:
            token = self._tokens.get(bearer)
            return token if token and token.expiry > time.time() else None
