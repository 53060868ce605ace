"""What a sandbox account looks like: its name, key, offers, managers and limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class SandboxOffer:
    """One offer (предложение) the school sells; an order buys one offer."""

    title: str
    price: Decimal
    offer_id: int
    code: str


def _default_offers() -> list[SandboxOffer]:
    return [
        SandboxOffer("Пакет Эконом", Decimal("991"), 5100101, "econom"),
        SandboxOffer("Пакет Стандарт", Decimal("12000"), 5100102, "standard"),
        SandboxOffer("Пакет VIP", Decimal("45000"), 5100103, "vip"),
    ]


def _default_managers() -> list[str]:
    return ["anna.smirnova@school.example", "oleg.kuznetsov@school.example"]


@dataclass
class GetCourseSandboxConfig:
    """Settings of one fake GetCourse account.

    `callback_url` is a URL template with `{object.…}` placeholders, as a school types it into
    a process operation «Вызвать URL»; `None` sends no callbacks. Whatever `callback_method`
    is, the data travels in the query string (GetCourse docs). The export limits count every
    export API request (start and poll) in a sliding window of `export_window_s` seconds.
    A callback is tried `callback_attempts` times in all (a connection error or a non-2xx
    answer), pausing `callback_backoff_s` after the first try and twice as long after each
    next one, at most `callback_backoff_max_s`.
    """

    account: str = "sandbox"
    key: str = "sandbox-secret-key"
    callback_url: str | None = None
    callback_method: str = "POST"
    callback_attempts: int = 3
    callback_backoff_s: float = 0.05
    callback_backoff_max_s: float = 5.0
    export_budget: int = 100
    export_window_s: float = 7200
    export_ready_after_s: float = 1.0
    products: list[SandboxOffer] = field(default_factory=_default_offers)
    managers: list[str] = field(default_factory=_default_managers)
