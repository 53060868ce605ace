"""Google's error envelope: ``{"error": {"code", "message", "status"}}`` (google.rpc.Status in
JSON, https://cloud.google.com/apis/design/errors), and OAuth's for the token endpoint."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse

STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
MESSAGES = {
    500: "Internal error encountered.",
    502: "Bad Gateway",
    503: "The service is currently unavailable.",
    504: "The request timed out. Please try again.",
}
NO_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
BAD_CREDENTIALS = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)


class GoogleError(Exception):
    """A refusal in Google's JSON error shape."""

    def __init__(self, code: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        body = {
            "error": {
                "code": self.code,
                "message": self.message,
                "status": STATUS.get(self.code, "UNKNOWN"),
            }
        }
        return JSONResponse(body, status_code=self.code, headers=self.headers)


def invalid(message: str) -> GoogleError:
    return GoogleError(400, message)


def unparsable(text: str) -> GoogleError:
    return GoogleError(400, f"Unable to parse range: {text}")


def unauthenticated(message: str = BAD_CREDENTIALS) -> GoogleError:
    return GoogleError(
        401, message, {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
    )


def injected(code: int) -> GoogleError:
    if code == 429:
        return GoogleError(429, "Quota exceeded (injected by the sandbox).")
    return GoogleError(code, MESSAGES.get(code, "Request failed (injected by the sandbox)."))


class OAuthError(Exception):
    """A token endpoint refusal: ``{"error": "invalid_grant", "error_description": ...}``."""

    def __init__(self, error: str, description: str, code: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.code = code

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": self.error, "error_description": self.description}, status_code=self.code
        )
