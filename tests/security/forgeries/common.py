"""What every family of forgeries shares: the verdict a forgery must get, and the mutations."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from tests.security.harness import (
    MAX_BODY_BYTES,
    Delivery,
)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
TOKEN_CHARS = string.ascii_letters + string.digits + "-_"


@dataclass(frozen=True)
class Expect:
    status: int
    reasons: tuple[str, ...]  # the stored reject_reason holds one of these; () for 413: not stored


@dataclass(frozen=True)
class Forgery:
    attack: str
    delivery: Delivery
    expect: Expect


TOO_LARGE = Expect(413, ())


def dumps(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def flat(document: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A JSON document as PHP-style form fields (``object[amount][value]=...``)."""
    if isinstance(document, dict):
        return [
            pair
            for key, value in document.items()
            for pair in flat(value, f"{prefix}[{key}]" if prefix else str(key))
        ]
    if isinstance(document, list):
        return [pair for i, value in enumerate(document) for pair in flat(value, f"{prefix}[{i}]")]
    return [(prefix, "" if document is None else str(document))]


def reencoded(
    fields: list[tuple[str, str]], document: Any, original: str, body: bytes = b""
) -> SearchStrategy[tuple[bytes, str]]:
    """The same content in another format than ``original``, with its content type (never the
    very bytes of ``body``: a signed body under another content type is still genuine)."""
    boundary = "schoolsync-test-boundary"
    multipart = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields
        )
        + f"--{boundary}--\r\n".encode()
    )
    xml = "<notification>" + "".join(f"<field name='{k}'>{v}</field>" for k, v in fields)
    options = [
        (dumps(document), JSON),
        (urlencode(fields).encode(), FORM),
        (multipart, f"multipart/form-data; boundary={boundary}"),
        ((xml + "</notification>").encode(), "application/xml"),
        (urlencode(fields).encode(), "text/plain"),
    ]
    return st.sampled_from([o for o in options if o[1] != original and o[0] != body])


def near_misses(secret: str) -> SearchStrategy[tuple[str, str | None]]:
    """(what, value) pairs for a credential that is not ``secret``; value None: absent."""

    def one_char(index: int) -> SearchStrategy[tuple[str, str | None]]:
        others = TOKEN_CHARS.replace(secret[index], "")
        return st.sampled_from(others).map(
            lambda c: ("one char changed", secret[:index] + c + secret[index + 1 :])
        )

    return st.one_of(
        st.just(("missing", None)),
        st.just(("empty", "")),
        st.just(("masked as stored", "***")),
        st.just(("case swapped", secret.swapcase())),
        st.integers(0, len(secret) - 1).flatmap(one_char),
        st.integers(1, len(secret) - 1).map(lambda n: ("prefix", secret[:n])),
        st.text(TOKEN_CHARS, min_size=1, max_size=8).map(lambda s: ("suffix", secret + s)),
        st.text(TOKEN_CHARS, min_size=1, max_size=40)
        .filter(lambda s: s != secret)
        .map(lambda s: ("wrong", s)),
    )


def oversize(draw: DrawFn, delivery: Delivery) -> Forgery:
    """The delivery with its body beyond the limit: declared, chunked, or with a lying length."""
    extra = draw(st.integers(1, 3 * MAX_BODY_BYTES))
    body = delivery.body + b" " * (MAX_BODY_BYTES + extra - len(delivery.body))
    how = draw(st.sampled_from(["declared", "chunked", "lying content-length"]))
    changed = replace(
        delivery,
        body=body,
        chunked=how == "chunked",
        content_length=str(len(delivery.body)) if how == "lying content-length" else None,
    )
    return Forgery(f"oversize body ({how})", changed, TOO_LARGE)


def truncated(draw: DrawFn, body: bytes) -> bytes:
    return body[: draw(st.integers(0, len(body) - 1))]


def money() -> SearchStrategy[Decimal]:
    return st.integers(100, 500_000).map(lambda n: Decimal(n) / 100)


def other_money(value: Decimal) -> SearchStrategy[Decimal]:
    return money().filter(lambda v: v != value)


def emails() -> SearchStrategy[str]:
    return st.builds(
        "{}.{}@{}".format,
        st.text(string.ascii_lowercase, min_size=1, max_size=8),
        st.text(string.ascii_lowercase, min_size=1, max_size=8),
        st.sampled_from(["example.org", "example.com", "mail.example"]),
    )
