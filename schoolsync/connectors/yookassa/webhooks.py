"""YooKassa HTTP notifications: verify the source address, parse, name the shop and the event.

YooKassa signs nothing. Its guidance (webhooks docs, the SDKs' ``SecurityHelper``) is to accept
a notification only from its networks and to re-fetch the object before acting; the re-fetch is
the app's (a job), never done here: ``accept`` does no I/O.

The source address is the TCP peer (``RawRequest.remote_addr``). When the peer is one of the
school's ``trusted_proxies``, the address is taken from ``X-Forwarded-For`` instead: the
right-most entry that is not itself a trusted proxy (entries left of it were written by the
client and prove nothing). An address outside the networks is a ``ForbiddenSourceError``
(a ``VerificationError`` the web role answers with 403).

The body is ``{"type": "notification", "event": "payment.succeeded", "object": {...}}``; the
object is typed by the event (``models.Notification``). Each school's shop is one route; with
several, the shop is the payment's ``object.recipient.account_id``, or, for objects without it
(refunds), ``?shop_id=`` in the notification URL set in that shop's cabinet. The dedup key is
``yookassa:{shop}:{event}:{object.id}``: YooKassa redelivers one event for 24 hours until it
gets a 200, and each redelivery has the same key.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schoolsync.connectors.inbound import AcceptedEvent, RawRequest
from schoolsync.connectors.yookassa.config import (
    YOOKASSA_NETWORKS,
    IPNetwork,
    YooKassaAccount,
    parse_networks,
)
from schoolsync.connectors.yookassa.models import (
    EventObject,
    Notification,
    Payment,
    Refund,
)
from schoolsync.core.errors import ForbiddenSourceError, MalformedInputError, VerificationError

PLATFORM = "yookassa"
FORWARDED_FOR = "x-forwarded-for"
_SHOP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class YooKassaRoute:
    """One school's shop, and whom it believes."""

    school: str
    shop_id: str
    networks: tuple[IPNetwork, ...] = parse_networks(YOOKASSA_NETWORKS)
    proxies: tuple[IPNetwork, ...] = ()

    @classmethod
    def for_account(cls, school: str, account: YooKassaAccount) -> YooKassaRoute:
        return cls(
            school=school,
            shop_id=account.shop_id,
            networks=account.networks,
            proxies=account.proxies,
        )

    def source(self, request: RawRequest) -> IPAddress:
        """The address the request came from, as far as this route's proxies vouch for it."""
        return source_address(request, self.proxies)

    def trusts(self, request: RawRequest) -> bool:
        return _within(self.source(request), self.networks)


# --- addresses -------------------------------------------------------------------------------


def _refuse(message: str) -> VerificationError:
    return VerificationError(message, platform=PLATFORM)


def _forbidden(message: str) -> ForbiddenSourceError:
    """The sender's address is not YooKassa's (the web role answers 403)."""
    return ForbiddenSourceError(message, platform=PLATFORM)


def parse_address(text: str) -> IPAddress:
    """``77.75.153.10``, ``77.75.153.10:443``, ``[2a02:5180::1]:443``, ``::ffff:77.75.153.10``
    (as the IPv4 address it maps). ``ValueError`` otherwise."""
    value = text.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]  # IPv4 with a port
    address = ipaddress.ip_address(value)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address in network for network in networks)


def source_address(request: RawRequest, proxies: Iterable[IPNetwork] = ()) -> IPAddress:
    """The TCP peer; or, when the peer is a trusted proxy, the right-most ``X-Forwarded-For``
    entry that is not a trusted proxy (the left-most entry if all of them are).

    Raises:
        ForbiddenSourceError: no peer address, or an address that is not an IP address where
            it must be read.
    """
    trusted = tuple(proxies)
    if not request.remote_addr:
        raise _forbidden("yookassa notification has no source address")
    try:
        address = parse_address(request.remote_addr)
    except ValueError:
        raise _forbidden("yookassa notification source is not an IP address") from None
    if not trusted or not _within(address, trusted):
        return address
    hops = [hop for hop in request.headers.get(FORWARDED_FOR, "").split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            address = parse_address(hop)
        except ValueError:
            raise _forbidden(
                "X-Forwarded-For from a trusted proxy has an entry that is not an IP address"
            ) from None
        if not _within(address, trusted):
            return address
    return address


# --- the body --------------------------------------------------------------------------------


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str
    event: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    object: dict[str, object]


def _problems(exc: ValidationError, prefix: str = "") -> str:
    """``object.amount.value: decimal_parsing; ...``: where and what, never the value."""
    found = []
    for error in exc.errors()[:5]:
        where = ".".join(
            [prefix, *(str(p) for p in error["loc"])] if prefix else map(str, error["loc"])
        )
        found.append(f"{where or 'body'}: {error['type']}")
    return "; ".join(found)


def _malformed(message: str) -> MalformedInputError:
    return MalformedInputError(message, platform=PLATFORM)


def parse_notification(body: bytes) -> Notification:
    """The notification in a body, its object typed by the event.

    Raises:
        MalformedInputError: naming the field and the problem (never a value).
    """
    if not body.strip():
        raise _malformed("yookassa notification body is empty")
    try:
        envelope = _Envelope.model_validate_json(body)
    except ValidationError as exc:
        raise _malformed(f"yookassa notification not understood: {_problems(exc)}") from None
    if envelope.type != "notification":
        raise _malformed("yookassa notification not understood: type: is not 'notification'")
    kind = envelope.event.partition(".")[0]
    model: type[Payment] | type[Refund] | type[EventObject] = EventObject
    if kind == "payment":
        model = Payment
    elif kind == "refund":
        model = Refund
    try:
        typed = model.model_validate(envelope.object)
    except ValidationError as exc:
        raise _malformed(
            f"yookassa {kind} notification not understood: {_problems(exc, 'object')}"
        ) from None
    return Notification(type="notification", event=envelope.event, object=typed)


def dedup_key(shop_id: str, notification: Notification) -> str:
    return f"yookassa:{shop_id}:{notification.event}:{notification.object.id}"


# --- the inbound source ----------------------------------------------------------------------


class YooKassaNotifications:
    """``POST /webhooks/yookassa``; one route per school's shop."""

    name = "yookassa"

    def __init__(self, routes: Iterable[YooKassaRoute]) -> None:
        self._routes: dict[str, YooKassaRoute] = {}
        for route in routes:
            if route.shop_id in self._routes:
                raise ValueError(f"YooKassa shop {route.shop_id} is configured twice")
            if not route.networks:
                raise ValueError(f"YooKassa shop {route.shop_id} trusts no network")
            self._routes[route.shop_id] = route
        if not self._routes:
            raise ValueError("no YooKassa shop is configured")

    @property
    def routes(self) -> Mapping[str, YooKassaRoute]:
        return dict(self._routes)

    def accept(self, request: RawRequest) -> AcceptedEvent:
        """Verify the source, parse, pick the shop. No network calls.

        Raises:
            ForbiddenSourceError: the source is outside YooKassa's networks (as the shop's
                config has them).
            VerificationError: the notification is for a shop no school has, or arrived at
                another shop's URL.
            MalformedInputError: the body is not a notification, or the shop cannot be told.
        """
        trusting = [route for route in self._routes.values() if route.trusts(request)]
        if not trusting:
            raise _forbidden(f"source address {self._shown(request)} not in YooKassa's networks")
        notification = parse_notification(request.body)
        route = self._route(notification, request)
        if route not in trusting:
            raise _forbidden(
                f"source address {self._shown(request)} not in the networks of YooKassa shop "
                f"{route.shop_id}"
            )
        return AcceptedEvent(dedup_key=dedup_key(route.shop_id, notification), school=route.school)

    def _route(self, notification: Notification, request: RawRequest) -> YooKassaRoute:
        named = notification.object.shop_id if isinstance(notification.object, Payment) else None
        in_url = _shop_in_query(request.query)
        if named and in_url and named != in_url:
            raise _refuse(
                f"notification for YooKassa shop {named} arrived at the URL of shop {in_url}"
            )
        shop = named or in_url
        if shop is not None and not _SHOP_ID.match(shop):
            raise _malformed("yookassa notification names a shop id that is not one")
        if shop is not None:
            found = self._routes.get(shop)
            if found is None:
                raise _refuse(f"notification is for YooKassa shop {shop}, which no school has")
            return found
        if len(self._routes) == 1:
            return next(iter(self._routes.values()))
        raise _malformed(
            "yookassa notification names no shop (object.recipient.account_id); with several "
            "shops, set each shop's notification URL to /webhooks/yookassa?shop_id=<shop id>"
        )

    def _shown(self, request: RawRequest) -> str:
        """The source address as the first route reads it, for the operator."""
        try:
            return str(next(iter(self._routes.values())).source(request))
        except VerificationError:
            return "(unreadable)"


def _shop_in_query(query: str) -> str | None:
    values = parse_qs(query).get("shop_id", [])
    if len(values) > 1:
        raise _malformed("notification URL names shop_id more than once")
    return values[0] if values and values[0] else None
