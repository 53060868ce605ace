"""Request bodies: JSON, non-empty, an array where amoCRM takes batches, within the batch limit.

Kommo "HTTP status code" page: an empty body is 400 "Request data can not be empty"; adding more
than 250 entities in one request is 422 "Limit 250 per page". ``/leads/complex`` takes at most 50
leads (Kommo complex-leads reference); more is refused with a validation error.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from schoolsync.sandbox.amocrm.responses import ValidationErrors, problem

BATCH_LIMIT = 250
COMPLEX_LIMIT = 50


class BodyError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise BodyError(problem(400, "Request data can not be empty"))
    try:
        data = json.loads(raw)
    except ValueError:
        raise BodyError(problem(400, "Request data is not valid JSON")) from None
    if data in ([], {}):
        raise BodyError(problem(400, "Request data can not be empty"))
    return data


async def batch(request: Request, *, limit: int = BATCH_LIMIT) -> list[Any]:
    data = await json_body(request)
    if not isinstance(data, list):
        errors = ValidationErrors()
        errors.wrong_type("0", "", "array")
        raise BodyError(errors.response())
    if len(data) > limit:
        if limit == COMPLEX_LIMIT:
            errors = ValidationErrors()
            errors.add(
                "0",
                "InvalidCount",
                "",
                f"This collection should contain {COMPLEX_LIMIT} elements or less.",
            )
            raise BodyError(errors.response())
        raise BodyError(problem(422, f"Limit {limit} per page"))
    return data


async def single(request: Request) -> dict[str, Any]:
    data = await json_body(request)
    if not isinstance(data, dict):
        errors = ValidationErrors()
        errors.wrong_type("0", "", "object")
        raise BodyError(errors.response())
    return data
