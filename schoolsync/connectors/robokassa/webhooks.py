"""Robokassa's ResultURL at ``/webhooks/robokassa``: read the fields, find the shop, verify.

Robokassa calls ResultURL once a payment has gone through, by POST
(``application/x-www-form-urlencoded``, UTF-8) or GET, as set in the shop's technical settings;
the fields are read from the body when there is one, else from the query string. A field given
twice is refused (which of the two was signed cannot be known).

Which school: ResultURL carries no merchant login. With one configured shop that is the shop.
With several, a ``Shp_school`` parameter (put in the payment link, so it is signed) picks the
shop; without one every shop's Password #2 is tried and the one that verifies is the shop (two
shops with the same password are refused as ambiguous). Every candidate is tried, so the time
taken does not tell which one matched.

The reply Robokassa expects, once the notification is stored, is the plain text ``OK{InvId}``
(:meth:`RobokassaWebhook.success_body`); anything else counts as a failed delivery and Robokassa
tries again, so a duplicate gets the same reply. Dedup key: ``robokassa:{login}:{InvId}``, and
``robokassa:{login}:test:{InvId}`` for a test-mode payment, so that a test payment never hides
the real one for the same invoice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from schoolsync.connectors.inbound import AcceptedEvent, RawRequest
from schoolsync.connectors.robokassa.config import HashName
from schoolsync.connectors.robokassa.models import RobokassaResult
from schoolsync.connectors.robokassa.result import folded, verify_result
from schoolsync.connectors.robokassa.signature import PLATFORM, check_hash
from schoolsync.core.errors import MalformedInputError, VerificationError

SCHOOL_PARAM = "shp_school"
MAX_FIELDS = 200


@dataclass(frozen=True)
class RobokassaRoute:
    """One school's shop, with the passwords that check its notifications."""

    school: str
    merchant_login: str
    password2: str = field(repr=False)
    test_password2: str | None = field(default=None, repr=False)
    hash: HashName = "md5"


def read_params(request: RawRequest) -> dict[str, str]:
    """The notification's fields: the form body, or the query string when the body is empty.

    Raises:
        MalformedInputError: not UTF-8, too many fields, a field given twice.
    """
    try:
        text = request.body.decode("utf-8") if request.body.strip() else request.query
        pairs = parse_qsl(
            text.strip(),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise MalformedInputError(
            "robokassa notification is not UTF-8", platform=PLATFORM
        ) from None
    except ValueError:  # more than MAX_FIELDS fields
        raise MalformedInputError(
            f"robokassa notification has more than {MAX_FIELDS} fields", platform=PLATFORM
        ) from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise MalformedInputError(
                f"robokassa parameter {key} is given twice", platform=PLATFORM
            )
        params[key] = value
    folded(params)  # the same name twice in different case
    return params


def dedup_key(merchant_login: str, result: RobokassaResult) -> str:
    test = "test:" if result.is_test else ""
    return f"robokassa:{merchant_login}:{test}{result.inv_id}"


class RobokassaWebhook:
    """``POST|GET /webhooks/robokassa`` for every school with a Robokassa shop."""

    name = "robokassa"
    allow_get = True  # ResultURL may be set to GET in the shop's technical settings
    forged_status = 400  # Robokassa documents no status; 400 says "not accepted"

    def __init__(self, routes: Sequence[RobokassaRoute]) -> None:
        if not routes:
            raise ValueError("no Robokassa shop is configured")
        for route in routes:
            check_hash(route.hash)
            if not route.password2:
                raise ValueError(f"Robokassa Password #2 of {route.merchant_login} is empty")
        self._routes = list(routes)

    def verify(self, request: RawRequest) -> tuple[RobokassaRoute, RobokassaResult]:
        """The shop and the verified notification.

        Raises:
            MalformedInputError: see :func:`read_params` and ``verify_result``.
            VerificationError: no shop's password verifies it, ``Shp_school`` names no shop,
                or more than one shop's does.
        """
        params = read_params(request)
        fields = folded(params)
        candidates = self._routes
        school = fields.get(SCHOOL_PARAM)
        if school is not None:
            candidates = [route for route in self._routes if route.school == school]
            if not candidates:
                raise VerificationError(
                    "robokassa Shp_school names no school with a Robokassa shop",
                    platform=PLATFORM,
                )
        matches: list[tuple[RobokassaRoute, RobokassaResult]] = []
        failure: VerificationError | None = None
        for route in candidates:
            try:
                result = verify_result(params, route.password2, route.test_password2, route.hash)
            except VerificationError as exc:
                failure = exc
                continue
            matches.append((route, result))
        if len(matches) > 1:
            raise VerificationError(
                "robokassa notification verifies for more than one shop (same Password #2)",
                platform=PLATFORM,
            )
        if not matches:
            assert failure is not None  # at least one candidate was tried
            if len(candidates) > 1:
                raise VerificationError(
                    f"robokassa SignatureValue matches none of {len(candidates)} shops",
                    platform=PLATFORM,
                )
            raise VerificationError(
                failure.message, platform=PLATFORM, account=candidates[0].merchant_login
            )
        return matches[0]

    def accept(self, request: RawRequest) -> AcceptedEvent:
        route, result = self.verify(request)
        return AcceptedEvent(dedup_key=dedup_key(route.merchant_login, result), school=route.school)

    @staticmethod
    def success_body(request: RawRequest) -> str:
        """``OK{InvId}``: the plain-text reply once the notification is stored.

        Raises:
            MalformedInputError: the request has no readable ``InvId``.
        """
        inv_id = folded(read_params(request)).get("invid", "").strip()
        if not inv_id.isdigit():
            raise MalformedInputError("robokassa notification lacks InvId", platform=PLATFORM)
        return f"OK{inv_id}"
