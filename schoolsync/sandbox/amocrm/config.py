"""What the fake account looks like: OAuth client, limits, pipelines, users and custom fields.

Defaults follow the shapes in the amoCRM docs (pipelines with the system statuses 142 "won" and
143 "lost" and an "unsorted" status of type 1; PHONE/EMAIL multitext contact fields with the
standard enum codes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

WON_STATUS_ID = 142
LOST_STATUS_ID = 143
UNSORTED_STATUS_TYPE = 1


@dataclass(frozen=True)
class AmoEnum:
    """One choice of a select or multitext field (``enum_id`` / ``enum_code``)."""

    id: int
    value: str
    sort: int = 500


@dataclass(frozen=True)
class AmoField:
    """A custom field. ``type``: text, textarea, url, numeric, multitext, select, checkbox, date."""

    id: int
    name: str
    type: str
    code: str | None = None
    enums: tuple[AmoEnum, ...] = ()
    sort: int = 500


@dataclass(frozen=True)
class AmoStatus:
    """A pipeline stage; ``type`` 1 is the "unsorted" stage, 0 every other one."""

    id: int
    name: str
    type: int = 0
    sort: int = 10
    color: str = "#99ccff"


@dataclass(frozen=True)
class AmoPipeline:
    id: int
    name: str
    statuses: tuple[AmoStatus, ...]
    is_main: bool = True
    sort: int = 1


@dataclass(frozen=True)
class AmoUser:
    id: int
    name: str
    email: str
    is_admin: bool = False


def default_pipelines() -> list[AmoPipeline]:
    return [
        AmoPipeline(
            id=1000,
            name="Воронка",
            statuses=(
                AmoStatus(
                    1001, "Неразобранное", type=UNSORTED_STATUS_TYPE, sort=10, color="#c1c1c1"
                ),
                AmoStatus(1002, "Новая заявка", sort=20),
                AmoStatus(1003, "В работе", sort=30, color="#ffcc66"),
                AmoStatus(WON_STATUS_ID, "Успешно реализовано", sort=10000, color="#CCFF66"),
                AmoStatus(LOST_STATUS_ID, "Закрыто и не реализовано", sort=11000, color="#D5D8DB"),
            ),
        )
    ]


def default_users() -> list[AmoUser]:
    return [
        AmoUser(8001, "Анна Администратор", "anna@sandbox.example", is_admin=True),
        AmoUser(8002, "Борис Менеджер", "boris@sandbox.example"),
    ]


def default_lead_fields() -> list[AmoField]:
    return [
        AmoField(5001, "Номер заказа", "text"),
        AmoField(5002, "Продукт", "text"),
        AmoField(5003, "Ссылка на оплату", "url"),
    ]


def default_contact_fields() -> list[AmoField]:
    phone_enums = ("WORK", "WORKDD", "MOB", "FAX", "HOME", "OTHER")
    email_enums = ("WORK", "PRIV", "OTHER")
    return [
        AmoField(
            6001,
            "Телефон",
            "multitext",
            code="PHONE",
            enums=tuple(
                AmoEnum(7001 + 2 * i, v, sort=2 * (i + 1)) for i, v in enumerate(phone_enums)
            ),
        ),
        AmoField(
            6002,
            "Email",
            "multitext",
            code="EMAIL",
            enums=tuple(
                AmoEnum(7101 + 2 * i, v, sort=2 * (i + 1)) for i, v in enumerate(email_enums)
            ),
        ),
    ]


@dataclass
class AmoSandboxConfig:
    """The fake account. Times are seconds; rates are requests per second.

    Beyond the fields the rest of the code base relies on, a few knobs model behaviour the docs
    leave open (see the package docstring for the sources):

    - ``refresh_grace``: the old refresh token keeps working until the new one is used (Kommo
      OAuth docs); ``False`` makes refresh tokens strictly single use.
    - ``revoke_access_on_refresh``: by default an access token lives until its own expiry.
    - ``rate_limit_body``: ``"json"`` (the problem body the Kommo docs show) or ``"html"`` (the
      non-JSON body the official PHP library guards against).
    - ``search_index_delay_s``: new or changed entities are invisible to ``query=`` for this
      long, like a lagging search index.
    """

    subdomain: str = "sandbox"
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"  # noqa: S105 - a fake account's fixed secret
    redirect_uri: str = "http://127.0.0.1:8000/amocrm/oauth"
    long_lived_token: str | None = None
    access_token_ttl_s: int = 86400
    rate_per_s: float = 7.0
    block_after_429s: int = 50
    block_for_s: float = 60.0
    webhook_url: str | None = None
    pipelines: list[AmoPipeline] = field(default_factory=default_pipelines)
    users: list[AmoUser] = field(default_factory=default_users)
    lead_fields: list[AmoField] = field(default_factory=default_lead_fields)
    contact_fields: list[AmoField] = field(default_factory=default_contact_fields)
    account_id: int = 29_000_001
    auth_code_ttl_s: int = 1200
    refresh_token_ttl_s: int = 90 * 86400
    refresh_grace: bool = True
    revoke_access_on_refresh: bool = False
    rate_limit_body: str = "json"
    webhook_timeout_s: float = 2.0
    webhook_retries: int = 3
    webhook_retry_delay_s: float = 0.2
    search_index_delay_s: float = 0.0
