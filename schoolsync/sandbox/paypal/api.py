"""PayPal's REST API, the parts a shop's back office uses.

- ``POST /v1/oauth2/token``: HTTP Basic ``client_id:secret`` and the form
  ``grant_type=client_credentials`` (developer.paypal.com/api/rest/authentication). Wrong
  credentials: 401 ``invalid_client`` "Client Authentication failed"; another grant type: 400
  ``unsupported_grant_type``.
- Every other call needs ``Authorization: Bearer <token>``; an unknown or expired token is 401
  ``invalid_token``.
- ``GET /v2/payments/captures/{id}``, ``GET /v2/payments/refunds/{id}``,
  ``GET /v2/checkout/orders/{id}``: the resource, or 404 ``RESOURCE_NOT_FOUND`` /
  ``INVALID_RESOURCE_ID``.
- ``GET /v1/payments/sale/{id}`` (v1 payments API): the sale, or 404 with v1's flat body
  ``{"name": "INVALID_RESOURCE_ID", "message", "information_link", "debug_id"}``.
- ``POST /v1/notifications/verify-webhook-signature`` (developer.paypal.com/api/webhooks/v1):
  ``{"auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time",
  "webhook_id", "webhook_event"}`` -> ``{"verification_status": "SUCCESS"|"FAILURE"}``. The CRC
  is taken over the bytes of ``webhook_event`` exactly as they appear in the request, so a
  client that re-serializes the event gets FAILURE, as PayPal warns.
- ``GET /v1/notifications/certs/{name}``: the signing certificate, when ``cert_url`` points here.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schoolsync.sandbox.paypal.errors import (
    api_error,
    not_found,
    oauth_error,
    v1_not_found,
    validation_error,
)
from schoolsync.sandbox.paypal.state import PayPalSandbox

VERIFY_FIELDS = (
    "auth_algo",
    "cert_url",
    "transmission_id",
    "transmission_sig",
    "transmission_time",
    "webhook_id",
    "webhook_event",
)
_WS = " \t\r\n"


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def unauthorized(sb: PayPalSandbox, request: Request) -> Response | None:
    """None for a valid bearer token; else PayPal's 401."""
    sb.count("requests")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return oauth_error(401, "invalid_client", "Client Authentication failed")
    if not sb.token_valid(token.strip()):
        return oauth_error(401, "invalid_token", "Access Token not found in cache")
    return None


async def token(sb: PayPalSandbox, request: Request) -> Response:
    sb.count("requests")
    credentials = _basic(request.headers.get("authorization", ""))
    if credentials != (sb.config.client_id, sb.config.client_secret):
        sb.count("token_refusals")
        return oauth_error(401, "invalid_client", "Client Authentication failed")
    form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
    grant = form.get("grant_type")
    if grant != "client_credentials":
        sb.count("token_refusals")
        return oauth_error(
            400,
            "unsupported_grant_type",
            "Grant Type is NULL" if not grant else "Unsupported grant type",
        )
    return JSONResponse(sb.issue_token())


async def get_capture(sb: PayPalSandbox, request: Request) -> Response:
    refused = unauthorized(sb, request)
    if refused is not None:
        return refused
    capture_id = request.path_params["id"]
    with sb.lock:
        found = sb.captures.get(capture_id)
    return JSONResponse(found) if found is not None else not_found(capture_id)


async def get_refund(sb: PayPalSandbox, request: Request) -> Response:
    refused = unauthorized(sb, request)
    if refused is not None:
        return refused
    refund_id = request.path_params["id"]
    with sb.lock:
        found = sb.refunds.get(refund_id)
    return JSONResponse(found) if found is not None else not_found(refund_id)


async def get_sale(sb: PayPalSandbox, request: Request) -> Response:
    refused = unauthorized(sb, request)
    if refused is not None:
        return refused
    with sb.lock:
        found = sb.sales.get(request.path_params["id"])
    return JSONResponse(found) if found is not None else v1_not_found()


async def get_order(sb: PayPalSandbox, request: Request) -> Response:
    refused = unauthorized(sb, request)
    if refused is not None:
        return refused
    order_id = request.path_params["id"]
    with sb.lock:
        found = sb.orders.get(order_id)
    return JSONResponse(found) if found is not None else not_found(order_id)


async def get_cert(sb: PayPalSandbox, request: Request) -> Response:
    name = request.path_params["name"]
    if sb.config.cert_url.rstrip("/").rsplit("/", 1)[-1] != name:
        return not_found(name)
    return Response(sb.signing.pem, media_type="application/x-x509-ca-cert")


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _WS:
        index += 1
    return index


def top_level_spans(text: str) -> dict[str, tuple[Any, int, int]]:
    """Each member of the JSON object ``text``: its value and where its text starts and ends.

    Raises ``ValueError`` when ``text`` is not one JSON object.
    """
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[Any, int, int]] = {}
    index = _skip(text, 0)
    if not text.startswith("{", index):
        raise ValueError("not an object")
    index = _skip(text, index + 1)
    if text.startswith("}", index):
        index += 1
    else:
        while True:
            key, index = decoder.raw_decode(text, index)
            if not isinstance(key, str):
                raise ValueError("a member name must be a string")
            index = _skip(text, index)
            if not text.startswith(":", index):
                raise ValueError("':' expected")
            start = _skip(text, index + 1)
            value, index = decoder.raw_decode(text, start)
            spans[key] = (value, start, index)
            index = _skip(text, index)
            if text.startswith(",", index):
                index = _skip(text, index + 1)
                continue
            if text.startswith("}", index):
                index += 1
                break
            raise ValueError("',' or '}' expected")
    if _skip(text, index) != len(text):
        raise ValueError("text after the object")
    return spans


def _signature_ok(sb: PayPalSandbox, fields: dict[str, Any], event: bytes) -> bool:
    if fields["auth_algo"] != "SHA256withRSA" or fields["cert_url"] != sb.config.cert_url:
        return False
    if fields["webhook_id"] != sb.config.webhook_id:
        return False
    try:
        signature = base64.b64decode(str(fields["transmission_sig"]), validate=True)
    except (binascii.Error, ValueError):
        return False
    crc = zlib.crc32(event) & 0xFFFFFFFF
    message = (
        f"{fields['transmission_id']}|{fields['transmission_time']}|{fields['webhook_id']}|{crc}"
    )
    try:
        sb.signing.key.public_key().verify(
            signature, message.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return False
    return True


async def verify_webhook_signature(sb: PayPalSandbox, request: Request) -> Response:
    refused = unauthorized(sb, request)
    if refused is not None:
        return refused
    try:
        text = (await request.body()).decode("utf-8")
        spans = top_level_spans(text)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return api_error(
            400,
            "INVALID_REQUEST",
            "Request is not well-formed, syntactically incorrect, or violates schema.",
        )
    for field in VERIFY_FIELDS:
        if field not in spans or spans[field][0] in (None, ""):
            return validation_error(field)
    fields = {name: spans[name][0] for name in VERIFY_FIELDS}
    if not isinstance(fields["webhook_event"], dict):
        return validation_error("webhook_event", "INVALID_PARAMETER_SYNTAX")
    _, start, end = spans["webhook_event"]
    ok = _signature_ok(sb, fields, text[start:end].encode("utf-8"))
    with sb.lock:
        sb.counts["verifications"] += 1
        sb.counts["verified"] += int(ok)
    return JSONResponse({"verification_status": "SUCCESS" if ok else "FAILURE"})
