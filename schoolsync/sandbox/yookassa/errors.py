"""YooKassa's error object and the 202 "processing" answer.

Every error with a JSON body is ``{"type": "error", "id", "code", "description", "parameter"?,
"retry_after"?}`` (OpenAPI ``BadRequest``/``InvalidCredentials``/... schemas; ``retry_after`` in
milliseconds). Codes by status (https://yookassa.ru/developers/using-api/response-handling/http-codes):
400 ``invalid_request``, 401 ``invalid_credentials``, 403 ``forbidden``, 404 ``not_found``,
429 ``too_many_requests``, 500 ``internal_server_error``; 405 and 415 come without a body.
The ``description`` texts are ours unless noted: YooKassa documents the codes, not the wording,
except ``Idempotence key duplicated`` (quoted by its SDKs' tests and READMEs).

A 202 body is ``{"type": "processing", "description", "retry_after"}`` (the fields YooKassa's
PHP SDK reads in ``ResponseProcessingException``).
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import JSONResponse, Response

CODES = {
    400: "invalid_request",
    401: "invalid_credentials",
    403: "forbidden",
    404: "not_found",
    429: "too_many_requests",
    500: "internal_server_error",
}
DESCRIPTIONS = {
    400: "Invalid request",
    401: "Error in shopId or secret key. Check their validity. You can reissue the key in the Merchant Profile",
    403: "Not enough rights to perform the operation",
    404: "The requested resource was not found",
    429: "Too many requests. Please try again later",
    500: "Internal server error. The result of processing the request is unknown. Repeat the request later with the same Idempotence-Key",
}
DUPLICATED_KEY = "Idempotence key duplicated"


class ApiError(Exception):
    """A refusal in YooKassa's error shape."""

    def __init__(
        self,
        status: int,
        description: str | None = None,
        *,
        parameter: str | None = None,
        retry_after_ms: int | None = None,
        code: str | None = None,
    ) -> None:
        self.status = status
        self.description = description or DESCRIPTIONS.get(status, "Request failed")
        super().__init__(self.description)
        self.parameter = parameter
        self.retry_after_ms = retry_after_ms
        self.code = code or CODES.get(status, "invalid_request")

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "error",
            "id": str(uuid.uuid4()),
            "code": self.code,
            "description": self.description,
        }
        if self.parameter:
            body["parameter"] = self.parameter
        if self.retry_after_ms is not None:
            body["retry_after"] = self.retry_after_ms
        return body

    def response(self) -> Response:
        if self.status in (405, 415):
            return Response(status_code=self.status)
        return JSONResponse(self.body(), status_code=self.status)


def invalid(description: str, parameter: str | None = None) -> ApiError:
    return ApiError(400, description, parameter=parameter)


def processing(retry_after_ms: int) -> JSONResponse:
    return JSONResponse(
        {
            "type": "processing",
            "description": "Request accepted, but not processed yet. Repeat it with the same Idempotence-Key",
            "retry_after": retry_after_ms,
        },
        status_code=202,
    )
