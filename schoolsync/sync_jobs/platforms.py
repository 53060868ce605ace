"""The platform clients and mappings of each school, built by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from schoolsync.connectors.amocrm.client import AmoCrmClient
from schoolsync.connectors.amocrm.oauth import TokenProvider
from schoolsync.connectors.getcourse.client import GetCourseClient
from schoolsync.connectors.getcourse.exports import GetCourseExports
from schoolsync.connectors.paypal.client import PayPalClient
from schoolsync.connectors.sheets.client import SheetsClient
from schoolsync.connectors.telegram.client import Pacer as ChatPacer
from schoolsync.connectors.telegram.client import TelegramClient
from schoolsync.connectors.yookassa.client import YooKassaClient
from schoolsync.mappings.amocrm import AmoCrmMapping
from schoolsync.mappings.getcourse import GetCourseMapping


@dataclass
class AmoCrmSetup:
    account: str
    client: AmoCrmClient
    mapping: AmoCrmMapping | None
    tokens: TokenProvider | None = None
    batch_size: int = 50


@dataclass
class GetCourseSetup:
    account: str
    client: GetCourseClient
    exports: GetCourseExports
    tz: ZoneInfo
    mapping: GetCourseMapping | None = None
    export_every_s: int = 1800


@dataclass
class TelegramSetup:
    bot: str
    client: TelegramClient
    chat_pacer: Callable[[str], ChatPacer]  # the budget of one chat, by chat id
    poll: bool = False  # updates by getUpdates instead of a webhook


@dataclass
class SheetsSetup:
    account: str
    client: SheetsClient


@dataclass
class YooKassaSetup:
    shop_id: str
    client: YooKassaClient


@dataclass
class SchoolPlatforms:
    amocrm: AmoCrmSetup | None = None
    getcourse: GetCourseSetup | None = None
    telegram: TelegramSetup | None = None
    sheets: SheetsSetup | None = None
    yookassa: YooKassaSetup | None = None
    paypal: PayPalClient | None = None  # re-fetches what a PayPal webhook names


@dataclass
class Platforms:
    redis: Any  # redis.Redis: locks shared by every worker process
    schools: dict[str, SchoolPlatforms] = field(default_factory=dict)

    def of(self, school: str) -> SchoolPlatforms:
        return self.schools.get(school) or SchoolPlatforms()
