"""Response bodies as amoCRM sends them.

Successes are ``application/hal+json``; errors are ``application/problem+json`` with ``title``,
``type`` (``https://httpstatus.es/<code>``), ``status`` and ``detail``, plus ``validation-errors``
on 400 (shape from the Kommo "HTTP status code" page). Errors that come from the edge rather than
the application (a block after too many 429s, gateway failures) are nginx-style HTML pages.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.responses import Response

HAL = "application/hal+json"
PROBLEM = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Time-out",
}


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def hal(data: Any, status: int = 200) -> Response:
    return Response(dumps(data), status_code=status, media_type=HAL)


def plain_json(data: Any, status: int = 200) -> Response:
    return Response(dumps(data), status_code=status, media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)


def problem(status: int, detail: str, **extra: Any) -> Response:
    body: dict[str, Any] = {
        "title": _TITLES.get(status, "Error"),
        "type": f"https://httpstatus.es/{status}",
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(dumps(body), status_code=status, media_type=PROBLEM)


def html_error(status: int) -> Response:
    title = f"{status} {_TITLES.get(status, 'Error')}"
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return Response(page, status_code=status, media_type="text/html")


def server_error(status: int) -> Response:
    """A 5xx: the JSON body the Kommo docs show for 500, an HTML gateway page otherwise."""
    if status == 500:
        body = {
            "title": "ErrInternalServer",
            "status": 500,
            "detail": "Our team are probably already working on the elimination of the problem",
            "trace_id": str(uuid.uuid4()),
        }
        return Response(dumps(body), status_code=500, media_type=PROBLEM)
    return html_error(status)


class ValidationErrors:
    """Errors of one request grouped by the ``request_id`` of the item they belong to."""

    def __init__(self) -> None:
        self._by_request: dict[str, list[dict[str, str]]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_request)

    def add(self, request_id: str, code: str, path: str, detail: str) -> None:
        self._by_request.setdefault(request_id, []).append(
            {"code": code, "path": path, "detail": detail}
        )

    def missing(self, request_id: str, path: str) -> None:
        self.add(request_id, "FieldMissing", path, "This field is missing.")

    def wrong_type(self, request_id: str, path: str, expected: str) -> None:
        self.add(request_id, "InvalidType", path, f"This value should be of type {expected}.")

    def bad_choice(self, request_id: str, path: str) -> None:
        self.add(
            request_id, "NotSupportedChoice", path, "The value you selected is not a valid choice."
        )

    def unexpected(self, request_id: str, path: str) -> None:
        self.add(request_id, "FieldNotExpected", path, "This field was not expected.")

    def response(self) -> Response:
        errors = [{"request_id": rid, "errors": errs} for rid, errs in self._by_request.items()]
        return problem(400, "Request validation failed", **{"validation-errors": errors})
