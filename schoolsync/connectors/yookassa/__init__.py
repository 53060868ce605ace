"""YooKassa (ЮKassa) API v3: payments and refunds with Basic auth and Idempotence-Key, and HTTP
notifications believed by their source address. Facts and their sources are in the module
docstrings and in ``tests/fixtures/yookassa/README.md``.
"""

from schoolsync.connectors.yookassa.client import (
    Pacer,
    YooKassaClient,
    amount_value,
    idempotence_key,
)
from schoolsync.connectors.yookassa.config import (
    PLATFORM,
    YOOKASSA_NETWORKS,
    YooKassaAccount,
)
from schoolsync.connectors.yookassa.models import (
    Amount,
    EventObject,
    Me,
    Notification,
    Payment,
    PaymentList,
    Refund,
)
from schoolsync.connectors.yookassa.webhooks import (
    YooKassaNotifications,
    YooKassaRoute,
    parse_notification,
    source_address,
)

__all__ = [
    "PLATFORM",
    "YOOKASSA_NETWORKS",
    "Amount",
    "EventObject",
    "Me",
    "Notification",
    "Pacer",
    "Payment",
    "PaymentList",
    "Refund",
    "YooKassaAccount",
    "YooKassaClient",
    "YooKassaNotifications",
    "YooKassaRoute",
    "amount_value",
    "idempotence_key",
    "parse_notification",
    "source_address",
]
