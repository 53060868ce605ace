"""PayPal's error answers.

REST APIs (developer.paypal.com/api/rest/responses): ``{"name", "message", "debug_id",
"details": [{"field"?, "issue", "description"}], "links"}`` with a ``Paypal-Debug-Id`` header.
The OAuth endpoint and bearer checks answer ``{"error", "error_description"}``.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.responses import JSONResponse


def debug_id() -> str:
    return secrets.token_hex(7)[:13]


def api_error(
    status: int, name: str, message: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    debug = debug_id()
    body: dict[str, Any] = {"name": name, "message": message, "debug_id": debug}
    if details:
        body["details"] = details
    body["links"] = [
        {
            "href": f"https://developer.paypal.com/docs/api/overview/#error-{name.lower()}",
            "rel": "information_link",
        }
    ]
    return JSONResponse(body, status_code=status, headers={"Paypal-Debug-Id": debug})


def not_found(resource_id: str) -> JSONResponse:
    return api_error(
        404,
        "RESOURCE_NOT_FOUND",
        "The specified resource does not exist.",
        [
            {
                "issue": "INVALID_RESOURCE_ID",
                "description": "Specified resource ID does not exist. Please check the "
                "resource ID and try again.",
            }
        ],
    )


def v1_not_found() -> JSONResponse:
    """The v1 payments API's 404: a flat body, no ``details``."""
    debug = debug_id()
    return JSONResponse(
        {
            "name": "INVALID_RESOURCE_ID",
            "message": "Requested resource ID was not found.",
            "information_link": "https://developer.paypal.com/docs/api/payments/v1/#errors",
            "debug_id": debug,
        },
        status_code=404,
        headers={"Paypal-Debug-Id": debug},
    )


def validation_error(field: str, issue: str = "MISSING_REQUIRED_PARAMETER") -> JSONResponse:
    return api_error(
        400,
        "VALIDATION_ERROR",
        "Invalid request - see details",
        [{"field": field, "location": "body", "issue": issue}],
    )


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Paypal-Debug-Id": debug_id()},
    )
