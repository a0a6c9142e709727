"""Cloud Storage batch requests (``POST /batch/storage/v1``) on the fake's storage front.

Google unwraps a batch into its inner calls and answers each as if it came alone; so does
this: every part goes through the fake's whole pipeline (faults, authentication, validation,
bucket permissions, fake-gcs-server), with the outer request's headers except the
``Content-*`` ones (an inner header wins). The answer is ``multipart/mixed`` with one
``application/http`` part per call, ``Content-ID: <response-X>`` for a part sent as ``<X>``,
in request order. What Google refuses is refused here too, and recorded as a violation: more
than 100 calls, a part that is not ``application/http``, an inner call outside the storage
JSON API or with a full URL. The ``email`` parser reads the request on purpose: an independent
reader of what the product's own encoder writes.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from email import message_from_bytes
from email.message import Message
from http import HTTPStatus

PATH = "/batch/storage/v1"
MAX_CALLS = 100
# (method, target, headers, body) -> (status, body, headers): one inner call, fully served.
Answer = Callable[[str, str, dict[str, str], bytes], tuple[int, bytes, dict[str, str]]]


class BatchRefused(Exception):
    """The batch as a whole is refused (400), as Google would."""


def serve(headers: dict[str, str], raw_body: bytes, answer: Answer,
          violations: list[str]) -> tuple[int, bytes, dict[str, str]]:
    """Answer one batch request; ``headers`` are the outer request's (lower-case names)."""
    try:
        calls = _calls(headers, raw_body)
    except BatchRefused as exc:
        violations.append(f"batch request refused: {exc}")
        error = {"error": {"code": 400, "message": str(exc), "errors": [
            {"domain": "global", "reason": "invalid", "message": str(exc)}]}}
        return 400, json.dumps(error).encode(), {"Content-Type": "application/json"}
    shared = {k: v for k, v in headers.items()
              if not k.startswith("content-") and k not in {"host", "transfer-encoding"}}
    boundary = f"batch_{secrets.token_hex(12)}"
    out = []
    for content_id, method, target, inner_headers, body in calls:
        status, reply, reply_headers = answer(method, target, {**shared, **inner_headers}, body)
        if status == 0:  # a dropped connection, as one part: Google's front answers 503
            status, reply, reply_headers = 503, b"", {}
        head = "".join(f"{k}: {v}\r\n" for k, v in reply_headers.items()
                       if k.lower() != "content-length")
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        part_id = f"Content-ID: <response-{content_id}>\r\n" if content_id else ""
        out.append(f"--{boundary}\r\nContent-Type: application/http\r\n{part_id}\r\n"
                   f"HTTP/1.1 {status} {reason}\r\n{head}Content-Length: {len(reply)}\r\n"
                   "\r\n".encode() + reply + b"\r\n")
    body = b"".join(out) + f"--{boundary}--\r\n".encode()
    return 200, body, {"Content-Type": f"multipart/mixed; boundary={boundary}"}


def _calls(headers: dict[str, str],
           raw_body: bytes) -> list[tuple[str, str, str, dict[str, str], bytes]]:
    content_type = headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/mixed"):
        raise BatchRefused(f"a batch must be multipart/mixed, not {content_type[:60]!r}")
    message = message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw_body)
    parts = message.get_payload()
    if message.defects or not isinstance(parts, list) or not parts:
        raise BatchRefused("the batch body is not well-formed multipart")
    if len(parts) > MAX_CALLS:
        raise BatchRefused(f"{len(parts)} calls in one batch; at most {MAX_CALLS}")
    return [_call(part) for part in parts]


def _call(part: Message | str) -> tuple[str, str, str, dict[str, str], bytes]:
    if not isinstance(part, Message) or part.get_content_type() != "application/http":
        raise BatchRefused("each part of a batch must be application/http")
    content_id = str(part.get("Content-ID", "")).strip().removeprefix("<").removesuffix(">")
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        raise BatchRefused("a batch part without a request")
    head, _, body = data.replace(b"\r\n", b"\n").partition(b"\n\n")
    request_line, *header_lines = head.decode("latin-1").split("\n")
    pieces = request_line.split(" ")
    if len(pieces) != 3 or not pieces[1].startswith("/storage/v1/"):
        raise BatchRefused(f"an inner request {request_line[:80]!r}: only paths of the "
                           "storage JSON API may be batched (no full URLs, no uploads)")
    inner_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        inner_headers[name.strip().lower()] = value.strip()
    length = int(inner_headers.pop("content-length", "0") or 0)
    return content_id, pieces[0], pieces[1], inner_headers, body[:length]
