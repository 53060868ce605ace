"""List endpoints: ``page``/``limit`` (at most 250), ``query``, ``filter[...]``, ``order[...]``,
``with``; the HAL page envelope; 204 with an empty body when a page has nothing.

``query`` is a case-insensitive substring search over the name and every custom field value;
phone values also match on digits, so ``+7 (999) 123-45-67`` finds ``89991234567``. Substring
matching can return more than the exact value asked for: callers must check what they got.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from schoolsync.sandbox.amocrm.fields import is_int
from schoolsync.sandbox.amocrm.responses import ValidationErrors, hal, no_content
from schoolsync.sandbox.amocrm.store import Entity

MAX_LIMIT = 250
DEFAULT_LIMIT = 50
_ORDER = re.compile(r"^order\[(\w+)\]$")
_FILTER = re.compile(r"^filter\[(\w+)\](.*)$")
_DIGITS = re.compile(r"\D")
X = TypeVar("X")


@dataclass
class ListParams:
    page: int = 1
    limit: int = DEFAULT_LIMIT
    query: str | None = None
    with_: frozenset[str] = frozenset()
    order: tuple[str, str] = ("id", "asc")
    ints: dict[str, list[int]] = field(default_factory=dict)
    ranges: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    strings: dict[str, list[str]] = field(default_factory=dict)
    statuses: list[tuple[int, int]] = field(default_factory=list)


def parse(params: QueryParams, errors: ValidationErrors) -> ListParams:
    """Reads paging, search, order and filters; problems go to ``errors`` (request_id "0")."""
    out = ListParams()
    out.page = _int_param(params, "page", 1, errors, minimum=1)
    out.limit = _int_param(params, "limit", DEFAULT_LIMIT, errors, minimum=1)
    if out.limit > MAX_LIMIT:
        errors.add("0", "InvalidValue", "limit", f"This value should be {MAX_LIMIT} or less.")
    query = params.get("query")
    out.query = query.strip() if query and query.strip() else None
    out.with_ = frozenset(w.strip() for w in params.get("with", "").split(",") if w.strip())
    statuses: dict[str, dict[str, str]] = {}
    for key, value in params.multi_items():
        order = _ORDER.match(key)
        if order:
            if order.group(1) not in ("id", "created_at", "updated_at") or value not in (
                "asc",
                "desc",
            ):
                errors.bad_choice("0", f"order.{order.group(1)}")
            else:
                out.order = (order.group(1), value)
            continue
        found = _FILTER.match(key)
        if not found:
            continue
        name, rest = found.groups()
        if name == "statuses":
            index_field = re.match(r"^\[(\d+)\]\[(\w+)\]$", rest)
            if index_field:
                statuses.setdefault(index_field.group(1), {})[index_field.group(2)] = value
            continue
        if rest in ("[from]", "[to]") or (name.endswith("_at") and rest == ""):
            number = _int_value(value, f"filter.{name}", errors)
            low, high = out.ranges.get(name, (None, None))
            out.ranges[name] = (number, high) if rest != "[to]" else (low, number)
            continue
        if name in ("id", "pipeline_id", "responsible_user_id", "entity_id", "task_type"):
            numbers = [_int_value(v, f"filter.{name}", errors) for v in value.split(",")]
            out.ints.setdefault(name, []).extend(n for n in numbers if n is not None)
        else:
            out.strings.setdefault(name, []).append(value)
    for pair in statuses.values():
        pipeline_id = _int_value(pair.get("pipeline_id", ""), "filter.statuses", errors)
        status_id = _int_value(pair.get("status_id", ""), "filter.statuses", errors)
        if pipeline_id is not None and status_id is not None:
            out.statuses.append((pipeline_id, status_id))
    return out


def _int_param(
    params: QueryParams, name: str, default: int, errors: ValidationErrors, *, minimum: int
) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    number = _int_value(raw, name, errors)
    if number is None:
        return default
    if number < minimum:
        errors.add("0", "InvalidValue", name, f"This value should be {minimum} or more.")
        return default
    return number


def _int_value(raw: str, path: str, errors: ValidationErrors) -> int | None:
    try:
        return int(raw)
    except ValueError:
        errors.wrong_type("0", path, "int")
        return None


def matches(entity: Entity, params: ListParams) -> bool:
    """The filters every list shares (ids, time ranges, simple int fields)."""
    for name, wanted in params.ints.items():
        key = "task_type_id" if name == "task_type" else name
        if key in entity and entity[key] not in wanted:
            return False
    for name, (low, high) in params.ranges.items():
        value = entity.get(name)
        if not is_int(value):
            return False
        if (low is not None and value < low) or (high is not None and value > high):
            return False
    pair = (entity.get("pipeline_id"), entity.get("status_id"))
    return not params.statuses or pair in params.statuses


def select(
    entities: Iterable[Entity], params: ListParams, extra: Callable[[Entity], bool] | None = None
) -> list[Entity]:
    """Entities passing the filters, ``extra`` and ``query``, in the requested order.

    Stores keep entities in id order, so the default order needs no sort."""
    found = list(entities)
    if params.ints or params.ranges or params.statuses:
        found = [e for e in found if matches(e, params)]
    if extra is not None:
        found = [e for e in found if extra(e)]
    if params.query is not None:
        needle, digits, now = params.query.lower(), _DIGITS.sub("", params.query), time.time()
        found = [e for e in found if _query_hit(e, needle, digits, now)]
    if params.order != ("id", "asc"):
        key, direction = params.order
        found.sort(key=lambda e: (e.get(key) or 0, e["id"]), reverse=direction == "desc")
    return found


def _query_hit(entity: Entity, needle: str, digits: str, now: float) -> bool:
    if entity.get("searchable_at", 0.0) > now:
        return False
    if needle in entity.get("search_text", ""):
        return True
    if len(digits) < 5:
        return False
    return any(
        digits in phone or (len(digits) >= 10 and phone[-10:] == digits[-10:])
        for phone in entity.get("phone_digits", ())
    )


def page_response(
    request: Request,
    name: str,
    found: Sequence[X],
    params: ListParams,
    render: Callable[[X], dict[str, Any]],
    **envelope: Any,
) -> Response:
    """One page of ``found`` in the HAL envelope; 204 with no body past the last page."""
    start = (params.page - 1) * params.limit
    chunk = found[start : start + params.limit]
    if not chunk:
        return no_content()
    url = request.url
    links: dict[str, Any] = {
        "self": {"href": str(url.include_query_params(page=params.page, limit=params.limit))}
    }
    if start + params.limit < len(found):
        links["next"] = {
            "href": str(url.include_query_params(page=params.page + 1, limit=params.limit))
        }
    if params.page > 1:
        links["first"] = {"href": str(url.include_query_params(page=1, limit=params.limit))}
        links["prev"] = {
            "href": str(url.include_query_params(page=params.page - 1, limit=params.limit))
        }
    return hal(
        {
            **envelope,
            "_page": params.page,
            "_links": links,
            "_embedded": {name: [render(e) for e in chunk]},
        }
    )
