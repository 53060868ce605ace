"""The sandboxes behind one port: ``/getcourse/...``, ``/amocrm/...``, ``/telegram/...`` and
``/sheets/...``.

Served by ``schoolsync sandbox`` and started by ``schoolsync run`` when no school configures a
real account. Imports nothing of schoolsync outside ``sandbox``: it is written from the
platforms' docs.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from schoolsync.sandbox.amocrm import AmoSandboxConfig
from schoolsync.sandbox.amocrm import create_app as amocrm_app
from schoolsync.sandbox.getcourse import GetCourseSandboxConfig
from schoolsync.sandbox.getcourse import create_app as getcourse_app
from schoolsync.sandbox.paypal import PayPalSandboxConfig
from schoolsync.sandbox.paypal import create_app as paypal_app
from schoolsync.sandbox.robokassa import RobokassaSandboxConfig
from schoolsync.sandbox.robokassa import create_app as robokassa_app
from schoolsync.sandbox.sheets import SheetsSandboxConfig
from schoolsync.sandbox.sheets import create_app as sheets_app
from schoolsync.sandbox.telegram import TelegramSandboxConfig
from schoolsync.sandbox.telegram import create_app as telegram_app
from schoolsync.sandbox.yookassa import YooKassaSandboxConfig
from schoolsync.sandbox.yookassa import create_app as yookassa_app


async def _index(_: Request) -> JSONResponse:
    return JSONResponse(
        {
            "sandboxes": {
                "getcourse": "/getcourse",
                "amocrm": "/amocrm",
                "telegram": "/telegram",
                "sheets": "/sheets",
                "yookassa": "/yookassa",
                "robokassa": "/robokassa",
                "paypal": "/paypal",
            },
            "control": [
                "/getcourse/_sandbox/state",
                "/amocrm/_sandbox/state",
                "/telegram/_sandbox/state",
                "/sheets/_sandbox/state",
                "/yookassa/_sandbox/state",
                "/robokassa/_sandbox/state",
                "/paypal/_sandbox/state",
            ],
        }
    )


def create_app(
    getcourse: GetCourseSandboxConfig | None = None,
    amocrm: AmoSandboxConfig | None = None,
    telegram: TelegramSandboxConfig | None = None,
    sheets: SheetsSandboxConfig | None = None,
    yookassa: YooKassaSandboxConfig | None = None,
    robokassa: RobokassaSandboxConfig | None = None,
    paypal: PayPalSandboxConfig | None = None,
) -> Starlette:
    return Starlette(
        routes=[
            Route("/", _index),
            Mount("/getcourse", app=getcourse_app(getcourse or GetCourseSandboxConfig())),
            Mount("/amocrm", app=amocrm_app(amocrm or AmoSandboxConfig())),
            # the bot token is in Telegram's URL paths: whoever serves this keeps access logs off
            Mount("/telegram", app=telegram_app(telegram or TelegramSandboxConfig())),
            # serves the sandbox's own service-account key at /sheets/_sandbox/key-file
            Mount("/sheets", app=sheets_app(sheets or SheetsSandboxConfig())),
            # the API is at /yookassa/v3 (Basic auth 100500 / test_sandbox_secret by default)
            Mount("/yookassa", app=yookassa_app(yookassa or YooKassaSandboxConfig())),
            # the payment page is /robokassa/Merchant/Index.aspx; /_sandbox/pay calls ResultURL
            Mount("/robokassa", app=robokassa_app(robokassa or RobokassaSandboxConfig())),
            # signs events with its own key; its certificate is at /paypal/_sandbox/cert.pem
            Mount("/paypal", app=paypal_app(paypal or PayPalSandboxConfig())),
        ]
    )
