"""Build each school's platform clients from its config blocks and the named secrets.

The config says where an account is and names its secrets; the environment holds the values
(``SCHOOLSYNC_SECRETS__<NAME>``). With the sandbox on, a school that configures no GetCourse or
amoCRM account gets the local sandboxes instead, with their well-known test credentials.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis
from pydantic import BaseModel

from schoolsync.connectors.amocrm.client import AmoCrmClient
from schoolsync.connectors.amocrm.config import AmoCrmAccount
from schoolsync.connectors.amocrm.oauth import LongLivedToken, OAuthApp, OAuthTokens
from schoolsync.connectors.amocrm.webhooks import AmoCrmWebhook
from schoolsync.connectors.getcourse.callbacks import GetCourseCallbacks
from schoolsync.connectors.getcourse.client import GetCourseClient
from schoolsync.connectors.getcourse.config import GetCourseAccount
from schoolsync.connectors.getcourse.exports import ExportBudget, GetCourseExports
from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.inbound import WebhookSource
from schoolsync.connectors.pacing import Pacer
from schoolsync.connectors.paypal.auth import PayPalTokens
from schoolsync.connectors.paypal.certs import CertStore
from schoolsync.connectors.paypal.client import PayPalClient
from schoolsync.connectors.paypal.config import PayPalAccount
from schoolsync.connectors.paypal.webhooks import PayPalRoute, PayPalWebhook
from schoolsync.connectors.robokassa.config import RobokassaAccount
from schoolsync.connectors.robokassa.webhooks import RobokassaRoute, RobokassaWebhook
from schoolsync.connectors.sheets.auth import ServiceAccountTokens
from schoolsync.connectors.sheets.client import SheetsClient
from schoolsync.connectors.sheets.config import SheetsAccount
from schoolsync.connectors.smtp.client import SmtpClient
from schoolsync.connectors.smtp.config import SmtpAccount
from schoolsync.connectors.telegram.client import TelegramClient
from schoolsync.connectors.telegram.config import TelegramAccount
from schoolsync.connectors.telegram.webhooks import TelegramRoute, TelegramWebhook
from schoolsync.connectors.yookassa.client import YooKassaClient
from schoolsync.connectors.yookassa.config import YooKassaAccount
from schoolsync.connectors.yookassa.webhooks import YooKassaNotifications, YooKassaRoute
from schoolsync.core.config import AppConfig, School
from schoolsync.core.db import Database
from schoolsync.core.errors import ConfigError
from schoolsync.core.settings import Settings
from schoolsync.mappings.alerts import AlertRules
from schoolsync.mappings.amocrm import AmoCrmMapping
from schoolsync.mappings.duplicates import DuplicateRules
from schoolsync.mappings.feedback import FeedbackRules
from schoolsync.mappings.followups import FollowupRules
from schoolsync.mappings.getcourse import GetCourseMapping
from schoolsync.mappings.notifications import NotificationRules
from schoolsync.mappings.payments import PaymentRules
from schoolsync.mappings.reconciliation import ReconciliationConfig
from schoolsync.mappings.refunds import RefundRules
from schoolsync.mappings.reports import ReportRules
from schoolsync.mappings.sessions import SessionRules
from schoolsync.mappings.sla import SlaRules
from schoolsync.mappings.status_sync import StatusSyncRules
from schoolsync.sync_jobs.platforms import (
    AmoCrmSetup,
    GetCourseSetup,
    Platforms,
    SchoolPlatforms,
    SheetsSetup,
    TelegramSetup,
    YooKassaSetup,
)

CONFIG_BLOCKS: dict[str, type[BaseModel]] = {
    "accounts.getcourse": GetCourseAccount,
    "accounts.amocrm": AmoCrmAccount,
    "mappings.getcourse": GetCourseMapping,
    "mappings.amocrm": AmoCrmMapping,
    "accounts.telegram": TelegramAccount,
    "accounts.sheets": SheetsAccount,
    "accounts.yookassa": YooKassaAccount,
    "accounts.robokassa": RobokassaAccount,
    "accounts.paypal": PayPalAccount,
    "rules.notifications": NotificationRules,
    "rules.feedback": FeedbackRules,
    "rules.payments": PaymentRules,
    "rules.sla": SlaRules,
    "rules.duplicates": DuplicateRules,
    "rules.followups": FollowupRules,
    "rules.status_sync": StatusSyncRules,
    "rules.refunds": RefundRules,
    "rules.reconciliation": ReconciliationConfig,
    "rules.alerts": AlertRules,
    "rules.reports": ReportRules,
    "accounts.smtp": SmtpAccount,
    "rules.sessions": SessionRules,
}

# The sandboxes' well-known test credentials (not secrets: they open nothing real).
SANDBOX_SECRETS = {
    "sandbox_getcourse_key": "sandbox-secret-key",
    "sandbox_getcourse_callback": "sandbox-callback-secret",
    "sandbox_amocrm_token": "sandbox-long-lived-token",
    "sandbox_amocrm_webhook": "sandbox-amocrm-webhook-secret",
    "sandbox_telegram_token": "123456:sandbox-bot-token",
    "sandbox_telegram_webhook": "sandbox-telegram-webhook-secret",
    "sandbox_yookassa_key": "test_sandbox_secret",
    "sandbox_robokassa_password1": "sandbox-password-1",
    "sandbox_robokassa_password2": "sandbox-password-2",
}

# The sandbox bot's groups (sandbox/telegram/config.py), one per department channel.
SANDBOX_CHANNELS = {
    "sales": -1001000000001,
    "finance_income": -1001000000002,
    "refunds": -1001000000003,
    "feedback": -1001000000004,
    "content": -1001000000005,
    "pedagogical": -1001000000006,
}


_PAYMENT_SANDBOXES = frozenset({"accounts.yookassa", "accounts.robokassa"})


def sandbox_key_file(data_dir: Path) -> Path:
    """Where the Sheets sandbox writes its service account's key file for the workers."""
    return data_dir / "sandbox" / "sheets-key.json"


def sandbox_blocks(port: int, data_dir: Path) -> dict[str, dict[str, Any]]:
    base = f"http://127.0.0.1:{port}"
    return {
        "accounts.getcourse": {
            "account": "sandbox",
            "base_url": f"{base}/getcourse",
            "key_env": "sandbox_getcourse_key",
            "callback_secret_env": "sandbox_getcourse_callback",
            "timezone": "Europe/Moscow",
        },
        "accounts.amocrm": {
            "account": "sandbox",
            "base_url": f"{base}/amocrm",
            "long_lived_token_env": "sandbox_amocrm_token",
            "webhook_secret_env": "sandbox_amocrm_webhook",
        },
        "mappings.amocrm": {
            "pipeline_id": 1000,
            "stages": {
                "new": 1002,
                "not_confirmed": 1002,
                "in_work": 1003,
                "payment_waiting": 1003,
                "part_payed": 1003,
                "pending": 1003,
                "waiting_for_return": 1003,
                "payed": 142,
                "cancelled": 143,
                "false": 143,
            },
            "fields": {"order_number": 5001, "product": 5002, "payment_link": 5003},
        },
        "accounts.telegram": {
            "bot": "sandbox",
            "base_url": f"{base}/telegram",
            "token_env": "sandbox_telegram_token",
            "webhook_secret_env": "sandbox_telegram_webhook",
        },
        "accounts.sheets": {
            "account": "sandbox",
            "base_url": f"{base}/sheets",
            "key_file": str(sandbox_key_file(data_dir)),
            "token_url": f"{base}/sheets/token",
        },
        "accounts.yookassa": {
            "shop_id": "100500",
            "secret_key_env": "sandbox_yookassa_key",
            "base_url": f"{base}/yookassa/v3",
            "trusted_networks": ["127.0.0.1/32"],  # the sandbox sends from this machine
        },
        "accounts.robokassa": {
            "merchant_login": "schoolsync-sandbox",
            "password1_env": "sandbox_robokassa_password1",
            "password2_env": "sandbox_robokassa_password2",
            "base_url": f"{base}/robokassa/Merchant/Index.aspx",
        },
        # the sandbox's Google Form answers sheet, read every minute (the demo of W10)
        "rules.feedback": {
            "survey": {
                "spreadsheet": "sandbox-feedback",
                "tab": "Ответы на форму (1)",
                "every_s": 60,
            }
        },
    }


def with_sandbox(config: AppConfig, port: int, data_dir: Path) -> AppConfig:
    """Point every school without its own GetCourse / amoCRM / Telegram block at the sandboxes
    (and a school without channels at the sandbox bot's groups)."""
    schools = []
    for school in config.schools:
        data = school.model_dump()
        # a school with a real course platform never gets a sandbox payment provider: anyone
        # could sign its notifications with the sandbox's public passwords
        real = bool((data.get("accounts") or {}).get("getcourse"))
        for path, value in sandbox_blocks(port, data_dir).items():
            if real and path in _PAYMENT_SANDBOXES:
                continue
            section, name = path.split(".")
            if not (data.get(section) or {}).get(name) and not (
                path == "mappings.amocrm" and school.block("accounts.amocrm")
            ):
                data.setdefault(section, {})[name] = value
        if not data.get("channels"):
            data["channels"] = dict(SANDBOX_CHANNELS)
        schools.append(School.model_validate(data))
    return AppConfig(schools=schools)


class SecretLookup:
    def __init__(self, settings: Settings, *, sandbox: bool) -> None:
        self.settings = settings
        self.sandbox = sandbox
        self.missing: list[str] = []

    def __call__(self, name: str | None, what: str) -> str:
        if not name:
            return ""
        if self.sandbox and name in SANDBOX_SECRETS:
            return SANDBOX_SECRETS[name]
        value = self.settings.secret(name)
        if value is None:
            self.missing.append(f"{what}: set SCHOOLSYNC_SECRETS__{name.upper()}")
            return ""
        return value


def build_platforms(
    settings: Settings, config: AppConfig, db: Database, client: redis.Redis, *, sandbox: bool
) -> Platforms:
    """Clients for every configured account. Nothing connects until used.

    Raises:
        ConfigError: naming every secret the config refers to that the environment lacks.
    """
    secret = SecretLookup(settings, sandbox=sandbox)
    platforms = Platforms(redis=client)
    for school in config.schools:
        found = SchoolPlatforms()
        gc_block = school.block("accounts.getcourse")
        if gc_block:
            account = GetCourseAccount.model_validate(gc_block)
            key = secret(account.key_env, f"schools[{school.id}].accounts.getcourse.key_env")
            http = build_client(account.base_url, timeout=account.timeout_s)
            endpoint = account.endpoint
            budget = ExportBudget(
                client, account.account, account.export_budget, account.export_window_s
            )
            gc_mapping = school.block("mappings.getcourse")
            found.getcourse = GetCourseSetup(
                account=account.account,
                client=GetCourseClient(http, endpoint, key),
                exports=GetCourseExports(http, endpoint, key, budget, tz=account.timezone),
                tz=account.tz,
                mapping=GetCourseMapping.model_validate(gc_mapping) if gc_mapping else None,
                export_every_s=account.export_every_s,
            )
        amo_block = school.block("accounts.amocrm")
        if amo_block:
            amo = AmoCrmAccount.model_validate(amo_block)
            where = f"schools[{school.id}].accounts.amocrm"
            http = build_client(amo.base_url, timeout=amo.timeout_s)
            endpoint = Endpoint("amocrm", amo.account)
            tokens: LongLivedToken | OAuthTokens
            if amo.auth == "long_lived":
                tokens = LongLivedToken(
                    secret(amo.long_lived_token_env, f"{where}.long_lived_token_env"),
                    endpoint=endpoint,
                )
            else:
                app = OAuthApp(
                    client_id=amo.client_id or "",
                    client_secret=secret(amo.client_secret_env, f"{where}.client_secret_env"),
                    redirect_uri=amo.redirect_uri or "",
                )
                tokens = OAuthTokens(
                    db=db,
                    redis=client,
                    http=http,
                    endpoint=endpoint,
                    school=school.id,
                    app=app,
                    namespace=settings.broker.namespace,
                )
            # 90 % of the documented limit: a request that lands a hair early on amoCRM's clock
            # is a 429, and a 429 slows everyone down for a while (less, and for shorter, than
            # the pacer's default: the limit is known, so a 429 here is jitter, not a new limit)
            pacer = Pacer(
                client,
                "amocrm",
                amo.account,
                rate=amo.rate_per_s * 0.9,
                shrink_to=0.8,
                shrink_for_s=15,
                namespace=settings.broker.namespace,
            )
            amo_mapping = school.block("mappings.amocrm")
            found.amocrm = AmoCrmSetup(
                account=amo.account,
                client=AmoCrmClient(http, endpoint, tokens, pacer),
                mapping=AmoCrmMapping.model_validate(amo_mapping) if amo_mapping else None,
                tokens=tokens,
                batch_size=amo.batch_size,
            )
        tg_block = school.block("accounts.telegram")
        if tg_block:
            found.telegram = _telegram(settings, client, secret, school, tg_block)
        sheets_block = school.block("accounts.sheets")
        if sheets_block:
            sheets = SheetsAccount.model_validate(sheets_block)
            sheet_tokens = ServiceAccountTokens(
                sheets.key_file,
                endpoint=sheets.endpoint,
                token_url=sheets.token_url,
                timeout_s=sheets.timeout_s,
            )
            found.sheets = SheetsSetup(
                account=sheets.account,
                client=SheetsClient(
                    build_client(sheets.base_url, timeout=sheets.timeout_s),
                    sheets.endpoint,
                    sheet_tokens,
                    Pacer(
                        client,
                        "sheets",
                        sheets.account,
                        rate=sheets.rate_per_s * 0.95,
                        namespace=settings.broker.namespace,
                    ),
                ),
            )
        paypal_block = school.block("accounts.paypal")
        if paypal_block:
            found.paypal = paypal_client(
                PayPalAccount.model_validate(paypal_block), secret, school.id
            )
        kassa_block = school.block("accounts.yookassa")
        if kassa_block:
            kassa = YooKassaAccount.model_validate(kassa_block)
            found.yookassa = YooKassaSetup(
                shop_id=kassa.shop_id,
                client=YooKassaClient(
                    build_client(kassa.base_url, timeout=kassa.timeout_s),
                    kassa.endpoint,
                    kassa.shop_id,
                    secret(kassa.secret_key_env, f"schools[{school.id}].accounts.yookassa"),
                    Pacer(
                        client,
                        "yookassa",
                        kassa.shop_id,
                        rate=kassa.rate_per_s,
                        namespace=settings.broker.namespace,
                    ),
                ),
            )
        platforms.schools[school.id] = found
    if secret.missing:
        raise ConfigError("secrets named in the config are not set: " + "; ".join(secret.missing))
    return platforms


def paypal_client(
    account: PayPalAccount, secret: SecretLookup, school_id: str
) -> PayPalClient | None:
    """One PayPal app's REST client, for the web role (online verification) and the workers
    (re-fetching what a webhook names). No pacer: PayPal publishes no rate to pace under, and
    its 429 is retried by the job. None when the client secret is not set (``secret`` has
    noted it, for the ``ConfigError`` its caller raises)."""
    where = f"schools[{school_id}].accounts.paypal.client_secret_env"
    client_secret = secret(account.client_secret_env, where)
    if not client_secret:
        return None
    http = build_client(account.base_url, timeout=account.timeout_s)
    tokens = PayPalTokens(http, account.endpoint, account.client_id, client_secret)
    return PayPalClient(http, account.endpoint, tokens, webhook_id=account.webhook_id)


def build_mailers(settings: Settings, config: AppConfig, *, sandbox: bool) -> dict[str, SmtpClient]:
    """Each school's SMTP account (``accounts.smtp``), by school id. Nothing connects here.

    Raises:
        ConfigError: naming a password secret the config refers to that the environment lacks.
    """
    secret = SecretLookup(settings, sandbox=sandbox)
    mailers: dict[str, SmtpClient] = {}
    for school in config.schools:
        block = school.block("accounts.smtp")
        if block:
            account = SmtpAccount.model_validate(block)
            where = f"schools[{school.id}].accounts.smtp.password_env"
            mailers[school.id] = SmtpClient(account, secret(account.password_env, where) or None)
    if secret.missing:
        raise ConfigError("secrets named in the config are not set: " + "; ".join(secret.missing))
    return mailers


def _telegram(
    settings: Settings,
    client: redis.Redis,
    secret: SecretLookup,
    school: School,
    block: dict[str, Any],
) -> TelegramSetup | None:
    bot = TelegramAccount.model_validate(block)
    token = secret(bot.token_env, f"schools[{school.id}].accounts.telegram.token_env")
    if not token:
        return None
    namespace = settings.broker.namespace
    # 95 % of Telegram's advice: a message that lands a hair early is a 429 for the whole chat
    bot_pacer = Pacer(
        client, "telegram", bot.bot, rate=bot.global_per_s * 0.95, namespace=namespace
    )
    chat_pacers: dict[str, Pacer] = {}

    def chat_pacer(chat_id: str) -> Pacer:
        pacer = chat_pacers.get(chat_id)
        if pacer is None:
            rate = bot.per_chat_per_s
            if chat_id.startswith("-"):  # a group: also at most per_group_per_min a minute
                rate = min(rate, bot.per_group_per_min / 60)
            pacer = Pacer(
                client,
                "telegram-chat",
                f"{bot.bot}:{chat_id}",
                rate=rate * 0.95,
                # Telegram publishes no exact limits: after a 429, half speed for a minute
                shrink_to=0.5,
                shrink_for_s=60,
                namespace=namespace,
            )
            chat_pacers[chat_id] = pacer
        return pacer

    return TelegramSetup(
        bot=bot.bot,
        client=TelegramClient(
            build_client(bot.base_url, timeout=bot.timeout_s), bot.endpoint, token, bot_pacer
        ),
        chat_pacer=chat_pacer,
        poll=bot.updates == "poll",
    )


def webhook_sources(
    settings: Settings, config: AppConfig, *, sandbox: bool
) -> dict[str, WebhookSource]:
    """GetCourse callbacks and amoCRM webhooks (verified by the secrets in their URLs), Telegram
    updates (by the secret header)."""
    secret = SecretLookup(settings, sandbox=sandbox)
    callbacks: dict[str, str] = {}
    timezones: dict[str, str] = {}
    amo_secrets: dict[str, str] = {}
    tg_routes: dict[str, TelegramRoute] = {}
    kassa_routes: list[YooKassaRoute] = []
    robo_routes: list[RobokassaRoute] = []
    paypal_routes: list[PayPalRoute] = []
    for school in config.schools:
        robo_block = school.block("accounts.robokassa")
        if robo_block:
            robo = RobokassaAccount.model_validate(robo_block)
            where = f"schools[{school.id}].accounts.robokassa"
            robo_routes.append(
                RobokassaRoute(
                    school=school.id,
                    merchant_login=robo.merchant_login,
                    password2=secret(robo.password2_env, f"{where}.password2_env"),
                    test_password2=secret(robo.test_password2_env, f"{where}.test_password2_env")
                    or None,
                    hash=robo.hash,
                )
            )
        paypal_block = school.block("accounts.paypal")
        if paypal_block:
            paypal = PayPalAccount.model_validate(paypal_block)
            paypal_routes.append(
                PayPalRoute(
                    school=school.id,
                    webhook_id=paypal.webhook_id,
                    verify=paypal.verify,
                    certs=CertStore(
                        paypal.cert_dir(settings.data_dir), suffixes=tuple(paypal.cert_hosts)
                    ),
                    client=paypal_client(paypal, secret, school.id),
                )
            )
        kassa_block = school.block("accounts.yookassa")
        if kassa_block:
            kassa_routes.append(
                YooKassaRoute.for_account(school.id, YooKassaAccount.model_validate(kassa_block))
            )
        gc_block = school.block("accounts.getcourse")
        if gc_block:
            account = GetCourseAccount.model_validate(gc_block)
            value = secret(account.callback_secret_env, "getcourse callback secret")
            if value:
                callbacks[value] = school.id
                timezones[school.id] = account.timezone
        amo_block = school.block("accounts.amocrm")
        if amo_block:
            amo = AmoCrmAccount.model_validate(amo_block)
            value = secret(amo.webhook_secret_env, "amocrm webhook secret")
            if value:
                amo_secrets[value] = school.id
        tg_block = school.block("accounts.telegram")
        if tg_block:
            bot = TelegramAccount.model_validate(tg_block)
            value = secret(bot.webhook_secret_env, "telegram webhook secret")
            if value and bot.updates == "webhook":
                tg_routes[value] = TelegramRoute(school=school.id, bot=bot.bot)
    found: dict[str, WebhookSource] = {}
    if callbacks:
        found["getcourse"] = GetCourseCallbacks(callbacks, timezones=timezones)
    if amo_secrets:
        found["amocrm"] = AmoCrmWebhook(amo_secrets)
    if tg_routes:
        found["telegram"] = TelegramWebhook(tg_routes)
    if secret.missing:  # a source without its secret would refuse (or accept) wrongly
        raise ConfigError("secrets named in the config are not set: " + "; ".join(secret.missing))
    if kassa_routes:
        found["yookassa"] = YooKassaNotifications(kassa_routes)
    if robo_routes:
        found["robokassa"] = RobokassaWebhook(robo_routes)
    if paypal_routes:
        found["paypal"] = PayPalWebhook(paypal_routes)
    return found
