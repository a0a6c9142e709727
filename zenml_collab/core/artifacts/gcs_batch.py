"""Many object listings in one request: the Cloud Storage JSON API's batch endpoint.

A cached run checks every candidate artifact's folder (one ``objects.list`` each). Sent one by
one that is a request, and its CPU, per artifact; here up to :data:`MAX_CALLS` of them travel
as the parts of one ``multipart/mixed`` POST to ``{endpoint}/batch/storage/v1``, and more
refs make several batches sent concurrently. Google documents the endpoint, at most 100 calls
per batch and a payload under 10 MB; any JSON API call may be batched except uploads and
downloads, so ``objects.list`` may (https://cloud.google.com/storage/docs/batch, read
2026-11). A batch saves round trips and client CPU, not quota: Google bills and rate-limits
each inner call as one request. fake-gcs-server answers batches too, if each part is
``application/http`` with ``Content-Transfer-Encoding: binary`` and the inner request carries
``Content-Length: 0``; google-cloud-storage's own ``Batch`` cannot send list calls (it
expects no payload back) and fails against the emulator, hence this small codec.

The answer is untrusted bytes from the network: bounded in size (each call asks for at most
:data:`PAGE_SIZE` objects, so a bigger answer is broken, not busy), and refused, as a
:class:`~zenml_collab.google.errors.MalformedResponseError` classified by the one Google
classifier, when it is not multipart, lacks a part, or names a part we did not send. Per part:
200 is the listing (``None`` for a prefix with a ``nextPageToken``: list it the ordinary,
paginated way); 429/5xx is ``None`` too (the ordinary list retries); any other status is the
error the ordinary list would have raised (a missing bucket or permission is not "artifact
missing"). A server that refuses the batch endpoint itself (400, 404, 405, 501) gets ``None``
for every prefix, and no batch again from this process.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from zenml_collab.core.artifacts.gcs_common import _retry, gcs_errors

log = logging.getLogger("zenml_collab.artifacts.gcs")

MAX_CALLS = 100  # Google's limit per batch request
# Objects asked for per artifact folder: a manifest and at most 16 files (base._MAX_FILES).
PAGE_SIZE = 24
# Per part, room for PAGE_SIZE objects with the emulator's full metadata and 1 KiB names.
_PART_BYTES = 192 * 1024
_BASE_BYTES = 64 * 1024
_TIMEOUT = 60.0
_NO_BATCH = frozenset({400, 404, 405, 501})  # the batch endpoint itself is not served
_RETRY_PART = frozenset({429, 500, 502, 503, 504})
_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})(?: [^\r\n]*)?$")
_BOUNDARY = re.compile(r'boundary="?([0-9A-Za-z\'()+_,./:=?-]{1,70})"?')
_unsupported: set[str] = set()
_unsupported_lock = threading.Lock()

Listings = dict[str, dict[str, int] | None]


def api_base(client: Any) -> str:
    """``client``'s endpoint (Google's, or the emulator's): the base of every call it sends."""
    return str(client._connection.API_BASE_URL).rstrip("/")


def list_prefixes(client: Any, bucket: str, prefixes: list[str], *,
                  max_workers: int = 8) -> Listings:
    """``{prefix: {name after the prefix: generation}}`` for each prefix, in batches.

    ``None`` for a prefix means "list it the ordinary way" (a second page, a retryable part,
    or a server without batches). Raises the classified error the ordinary list would raise.
    """
    # The client's own authorized session: same credentials, refresh, connection pool.
    base, session = api_base(client), client._http
    with _unsupported_lock:
        if base in _unsupported:
            return dict.fromkeys(prefixes)
    chunks = [prefixes[i:i + MAX_CALLS] for i in range(0, len(prefixes), MAX_CALLS)]

    def send(chunk: list[str]) -> Listings:
        return _send(session, base, bucket, chunk)

    if len(chunks) == 1:
        return send(chunks[0])
    with ThreadPoolExecutor(max_workers=min(max_workers, len(chunks)),
                            thread_name_prefix="collab-gcs-batch") as pool:
        answers = list(pool.map(send, chunks))
    return {prefix: listing for answer in answers for prefix, listing in answer.items()}


def _send(session: Any, base: str, bucket: str, prefixes: list[str]) -> Listings:
    url = f"{base}/batch/storage/v1"
    token = secrets.token_hex(8)
    boundary = f"collab-{token}"
    body = encode(bucket, prefixes, boundary, token)
    headers = {"Content-Type": f"multipart/mixed; boundary={boundary}"}
    limit = _BASE_BYTES + _PART_BYTES * len(prefixes)

    def post() -> tuple[int, str, bytes]:
        # Retried as every storage call is (429, 5xx, dropped connections); a refusal of the
        # batch endpoint itself is not an error, the caller lists one folder per request.
        response = session.request("POST", url, data=body, headers=headers, timeout=_TIMEOUT,
                                   stream=True)
        try:
            raw = _read_bounded(response, limit)
        finally:
            response.close()
        status = int(response.status_code)
        if status >= 300 and status not in _NO_BATCH:
            _raise_for(response, raw)
        return status, str(response.headers.get("Content-Type", "")), raw

    action = f"checking {len(prefixes)} artifacts (one batch request)"
    with gcs_errors(bucket, action):
        status, content_type, raw = _retry()(post)()
        if status in _NO_BATCH:
            log.debug("%s answered %d to a batch request: listing one folder per request",
                     url, status)
            with _unsupported_lock:
                _unsupported.add(base)
            return dict.fromkeys(prefixes)
        parts = decode(content_type, raw, [f"{token}+{i}" for i in range(len(prefixes))])
    listings: Listings = {}
    for i, (prefix, (part_status, part_body)) in enumerate(zip(prefixes, parts, strict=True)):
        with gcs_errors(bucket, f"checking {prefix}"):
            listings[prefix] = _listing(part_status, part_body, prefix,
                                        base + _inner_path(bucket, prefix), i)
    return listings


def encode(bucket: str, prefixes: list[str], boundary: str, token: str) -> bytes:
    """The multipart body: one ``objects.list`` of each prefix, Content-ID ``<token+i>``."""
    parts = []
    for i, prefix in enumerate(prefixes):
        # The inner request ends with its empty line; the CRLF after it belongs to the next
        # delimiter (RFC 2046), without it fake-gcs-server reads a truncated request.
        parts.append(
            f"--{boundary}\r\nContent-Type: application/http\r\n"
            f"Content-Transfer-Encoding: binary\r\nContent-ID: <{token}+{i}>\r\n\r\n"
            f"GET {_inner_path(bucket, prefix)} HTTP/1.1\r\nContent-Length: 0\r\n\r\n\r\n")
    return ("".join(parts) + f"--{boundary}--\r\n").encode()


def _inner_path(bucket: str, prefix: str) -> str:
    return (f"/storage/v1/b/{quote(bucket, safe='')}/o?prefix={quote(prefix, safe='')}"
            f"&maxResults={PAGE_SIZE}&fields=items(name,generation),nextPageToken")


def decode(content_type: str, raw: bytes, ids: list[str]) -> list[tuple[int, bytes]]:
    """``(status, body)`` of each inner response, in the order of ``ids`` (sent Content-IDs).

    Google answers part ``<x>`` as ``<response-x>``; a part missing, repeated or unknown, or
    an answer that is not multipart, is a :class:`MalformedResponseError`. A strict split on
    the boundary (RFC 2046) rather than the ``email`` parser, which accepts anything (it notes
    defects instead) and costs more CPU than the rest of a cached step.
    """
    from zenml_collab.google.errors import MalformedResponseError

    boundary = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/mixed") or boundary is None:
        raise MalformedResponseError(
            f"a batch answer of type {content_type[:80]!r}, expected multipart/mixed")
    pieces = (b"\n" + raw).split(b"\n--" + boundary.group(1).encode())
    if len(pieces) < 2 or not pieces[-1].startswith(b"--"):
        raise MalformedResponseError("a batch answer without its closing boundary")
    wanted = {f"<response-{cid}>": i for i, cid in enumerate(ids)}
    answers: dict[int, tuple[int, bytes]] = {}
    for piece in pieces[1:-1]:
        headers, content = _part(piece)
        index = wanted.get(headers.get("content-id", ""))
        if index is None or index in answers:
            raise MalformedResponseError(
                f"a batch answer part with Content-ID {headers.get('content-id', '')[:80]!r}, "
                "which names no call of the request (or names one twice)")
        answers[index] = _inner_response(content)
    if len(answers) != len(ids):
        raise MalformedResponseError(
            f"a batch answer with {len(answers)} parts for {len(ids)} calls")
    return [answers[i] for i in range(len(ids))]


def _part(piece: bytes) -> tuple[dict[str, str], bytes]:
    """The headers (lower-case names) and content of one part, as it follows its boundary."""
    from zenml_collab.google.errors import MalformedResponseError

    padding, newline, rest = piece.partition(b"\n")
    head, content = _head_and_body(rest)
    if not newline or padding.strip(b" \t\r") or head is None:
        raise MalformedResponseError("a batch answer part that is not well-formed")
    headers: dict[str, str] = {}
    for line in head.split(b"\n") if head else ():
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise MalformedResponseError("a batch answer part with a malformed header")
        headers[name.strip().lower()] = value.strip()
    if headers.get("content-transfer-encoding", "binary").lower() not in {"binary", "8bit",
                                                                         "7bit"}:
        raise MalformedResponseError("a batch answer part in a transfer encoding not asked for")
    return headers, content.removesuffix(b"\r")  # the CR of the CRLF before the boundary


def _head_and_body(data: bytes) -> tuple[bytes | None, bytes]:
    """Split at the first empty line (CRLF or bare LF); ``None`` head if there is none."""
    if data.startswith((b"\r\n", b"\n")):  # no headers at all
        return b"", data.split(b"\n", 1)[1]
    end = data.find(b"\n\r\n"), data.find(b"\n\n")
    cut = min((e for e in end if e >= 0), default=-1)
    if cut < 0:
        return None, b""
    body = data[cut + 1:]
    return data[:cut].rstrip(b"\r").replace(b"\r\n", b"\n"), body.split(b"\n", 1)[1]


def _inner_response(data: bytes) -> tuple[int, bytes]:
    from zenml_collab.google.errors import MalformedResponseError

    head, body = _head_and_body(data)
    status = _STATUS_LINE.match(head.split(b"\n", 1)[0]) if head else None
    if status is None:
        raise MalformedResponseError("a batch answer part that is not an HTTP response")
    return int(status.group(1)), body


def _listing(status: int, body: bytes, prefix: str, url: str,
             index: int) -> dict[str, int] | None:
    """One part's answer: the listing, ``None`` (list it the ordinary way), or raise."""
    from zenml_collab.google.errors import MalformedResponseError

    if status in _RETRY_PART:
        return None
    if status != 200:
        _raise_for(_part_response(status, body, url), body)
    try:
        data = json.loads(body)
    except ValueError:
        raise MalformedResponseError(f"part {index} of a batch answer is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("items", []), list):
        raise MalformedResponseError(f"part {index} of a batch answer is not a listing")
    if data.get("nextPageToken"):
        return None  # more objects than one page: never ours, list them page by page
    listing: dict[str, int] = {}
    for item in data.get("items", []):
        name = item.get("name") if isinstance(item, dict) else None
        generation = str(item.get("generation", "0")) if isinstance(item, dict) else ""
        if not isinstance(name, str) or not name.startswith(prefix) or not generation.isdigit():
            raise MalformedResponseError(
                f"part {index} of a batch answer lists an object outside {prefix!r} or "
                "without a generation")
        listing[name.removeprefix(prefix)] = int(generation)
    return listing


def _read_bounded(response: Any, limit: int) -> bytes:
    from zenml_collab.google.errors import MalformedResponseError

    def too_large() -> MalformedResponseError:
        return MalformedResponseError(f"a batch answer larger than {limit} bytes")

    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large()
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _part_response(status: int, body: bytes, url: str) -> Any:
    """A ``requests.Response`` for one part, so its error reads as the ordinary call's."""
    import requests

    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers["Content-Type"] = "application/json"
    response.request = requests.Request("GET", url).prepare()
    return response


def _raise_for(response: Any, raw: bytes) -> None:
    """Raise the storage library's exception for a refused call (the classifier's input)."""
    from google.api_core import exceptions as gexc

    response._content = raw  # already read within the bound; never read again
    raise gexc.from_http_response(response)
