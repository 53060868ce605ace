"""PayPal webhooks at ``/webhooks/paypal``: verify the transmission, then parse the event.

Headers (developer.paypal.com/api/rest/webhooks): ``PAYPAL-TRANSMISSION-ID``,
``PAYPAL-TRANSMISSION-TIME``, ``PAYPAL-TRANSMISSION-SIG``, ``PAYPAL-CERT-URL``,
``PAYPAL-AUTH-ALGO`` (only ``SHA256withRSA`` is accepted); the body is the JSON event
``{"id", "event_type", "create_time", "resource_type", "resource", ...}``. Typed resources:
``PAYMENT.CAPTURE.COMPLETED`` (a v2 capture), ``PAYMENT.CAPTURE.REFUNDED`` (a v2 refund),
``PAYMENT.SALE.COMPLETED`` (the older v1 sale); any other event is accepted with its resource
left as JSON. Dedup key: the event id (PayPal redelivers the same event with a new transmission
id until it gets a 2xx, for about three days).

No network inside :meth:`PayPalWebhook.accept` (it runs on the web server's event loop). The
network part is :meth:`PayPalWebhook.prepare`, which the app calls first, in a thread:

- ``verify: offline`` schools: the certificate at ``PAYPAL-CERT-URL`` is fetched into the cache
  when it is not there yet (allowed hosts only, https only). ``accept`` then verifies against
  the cached certificate; a certificate that is not cached is a ``VerificationError`` there.
- ``verify: online`` schools: PayPal's ``verify-webhook-signature`` is asked, and a ``SUCCESS``
  remembered (in memory, by a digest of the headers and body) for ``accept`` to find.

``prepare`` raises ``VerificationError`` for a certificate URL that is not allowed (answer as
for a forged delivery) and ``RetryableError`` when PayPal cannot be reached (answer 503, so
PayPal tries again). Without ``prepare``, ``accept`` still verifies offline deliveries whose
certificate is already cached (seeded, or fetched for an earlier delivery).

Which school: the signed message includes the webhook id, so each school's ``webhook_id`` is
tried and the one that verifies names the school.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from pydantic import ValidationError

from schoolsync.connectors.inbound import AcceptedEvent, RawRequest
from schoolsync.connectors.paypal.certs import CertStore
from schoolsync.connectors.paypal.models import Capture, Refund, Sale, WebhookEvent
from schoolsync.connectors.paypal.verify import PLATFORM, Transmission, verify_offline
from schoolsync.core.errors import MalformedInputError, VerificationError

CAPTURE_COMPLETED = "PAYMENT.CAPTURE.COMPLETED"
CAPTURE_REFUNDED = "PAYMENT.CAPTURE.REFUNDED"
SALE_COMPLETED = "PAYMENT.SALE.COMPLETED"
RESOURCES: dict[str, type[Capture] | type[Refund] | type[Sale]] = {
    CAPTURE_COMPLETED: Capture,
    CAPTURE_REFUNDED: Refund,
    SALE_COMPLETED: Sale,
}


class OnlineVerifier(Protocol):
    """What ``verify: online`` needs: :meth:`PayPalClient.verify_webhook_signature_online`."""

    def verify_webhook_signature_online(self, headers: Mapping[str, str], event: bytes) -> bool: ...


@dataclass(frozen=True)
class PayPalRoute:
    """One school's PayPal app: its webhook id and how its deliveries are verified."""

    school: str
    webhook_id: str
    verify: Literal["offline", "online"] = "offline"
    certs: CertStore | None = None  # for offline
    client: OnlineVerifier | None = None  # for online


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['type']}" for e in exc.errors()[:5]
    )


def parse_event(body: bytes) -> WebhookEvent:
    """The event envelope in a webhook body.

    Raises:
        MalformedInputError: not a JSON object, or no ``id`` / ``event_type`` (names the field).
    """
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise MalformedInputError("paypal webhook body is not JSON", platform=PLATFORM) from None
    if not isinstance(document, dict):
        raise MalformedInputError("paypal webhook body is not a JSON object", platform=PLATFORM)
    try:
        return WebhookEvent.model_validate(document)
    except ValidationError as exc:
        raise MalformedInputError(
            f"paypal webhook event not understood: {_problems(exc)}", platform=PLATFORM
        ) from None


def event_resource(event: WebhookEvent) -> Capture | Refund | Sale | None:
    """The typed resource of a capture, refund or sale event; None for other events.

    Raises:
        MalformedInputError: the resource of a known event type does not parse.
    """
    model = RESOURCES.get(event.event_type)
    if model is None:
        return None
    try:
        return model.model_validate(event.resource)
    except ValidationError as exc:
        raise MalformedInputError(
            f"paypal {event.event_type} resource not understood: {_problems(exc)}",
            platform=PLATFORM,
        ) from None


def _digest(transmission: Transmission, body: bytes) -> str:
    hashed = hashlib.sha256()
    for part in (
        transmission.transmission_id,
        transmission.transmission_time,
        transmission.transmission_sig,
        transmission.cert_url,
        transmission.auth_algo,
    ):
        hashed.update(part.encode("utf-8") + b"\x00")
    hashed.update(body)
    return hashed.hexdigest()


class PayPalWebhook:
    """``POST /webhooks/paypal`` for every school with a PayPal app."""

    name = "paypal"

    def __init__(
        self,
        routes: Sequence[PayPalRoute],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        remembered: int = 4096,
    ) -> None:
        if not routes:
            raise ValueError("no PayPal app is configured")
        for route in routes:
            if route.verify == "offline" and route.certs is None:
                raise ValueError(f"school {route.school}: offline verification needs a CertStore")
            if route.verify == "online" and route.client is None:
                raise ValueError(f"school {route.school}: online verification needs a client")
        self._routes = list(routes)
        self._clock = clock
        self._remembered = remembered
        self._verified: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def prepare(self, request: RawRequest) -> None:
        """The network part of verification; call it (in a thread) before :meth:`accept`.

        Raises:
            VerificationError: signature headers missing, another algorithm than
                SHA256withRSA, a certificate URL that is not allowed or does not hold a
                certificate.
            MalformedInputError: (online) the body is not a JSON object.
            RetryableError: PayPal or its certificate host cannot be reached right now.
        """
        transmission = Transmission.from_headers(request.headers)
        transmission.check_algorithm()
        fetched: set[int] = set()
        for index, route in enumerate(self._routes):
            if route.verify == "offline":
                assert route.certs is not None  # checked in __init__
                if id(route.certs) not in fetched:
                    route.certs.fetch(transmission.cert_url)
                    fetched.add(id(route.certs))
                continue
            assert route.client is not None  # checked in __init__
            if route.client.verify_webhook_signature_online(request.headers, request.body):
                self._remember(_digest(transmission, request.body), index)

    def accept(self, request: RawRequest) -> AcceptedEvent:
        transmission = Transmission.from_headers(request.headers)
        transmission.check_algorithm()
        route = self._verified_route(transmission, request.body)
        event = parse_event(request.body)
        event_resource(event)
        return AcceptedEvent(dedup_key=event.id, school=route.school)

    def _verified_route(self, transmission: Transmission, body: bytes) -> PayPalRoute:
        failure: VerificationError | None = None
        now = self._clock()
        with self._lock:
            online = self._verified.get(_digest(transmission, body))
        for index, route in enumerate(self._routes):
            if route.verify == "online":
                if online == index:
                    return route
                failure = failure or VerificationError(
                    "paypal delivery was not verified online (prepare() first)",
                    platform=PLATFORM,
                )
                continue
            assert route.certs is not None  # checked in __init__
            try:
                cert = route.certs.load(transmission.cert_url)
                verify_offline(
                    transmission,
                    body,
                    route.webhook_id,
                    cert,
                    suffixes=route.certs.suffixes,
                    now=now,
                )
            except VerificationError as exc:
                failure = exc
                continue
            return route
        assert failure is not None  # there is at least one route
        if len(self._routes) > 1:
            raise VerificationError(
                f"paypal delivery verifies for none of {len(self._routes)} webhooks "
                f"(last problem: {failure.message})",
                platform=PLATFORM,
            )
        raise failure

    def _remember(self, digest: str, index: int) -> None:
        with self._lock:
            self._verified[digest] = index
            self._verified.move_to_end(digest)
            while len(self._verified) > self._remembered:
                self._verified.popitem(last=False)
