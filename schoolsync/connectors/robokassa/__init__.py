"""Robokassa: ResultURL notifications verified with Password #2, payment links signed with
Password #1, and test mode with its own pair. Facts and their sources are in the module
docstrings and in ``tests/fixtures/robokassa/README.md``.
"""

from schoolsync.connectors.robokassa.config import RobokassaAccount
from schoolsync.connectors.robokassa.links import RobokassaLinks, format_out_sum
from schoolsync.connectors.robokassa.models import RobokassaResult
from schoolsync.connectors.robokassa.result import verify_result
from schoolsync.connectors.robokassa.signature import HASHES, digest
from schoolsync.connectors.robokassa.webhooks import (
    RobokassaRoute,
    RobokassaWebhook,
    dedup_key,
    read_params,
)

__all__ = [
    "HASHES",
    "RobokassaAccount",
    "RobokassaLinks",
    "RobokassaResult",
    "RobokassaRoute",
    "RobokassaWebhook",
    "dedup_key",
    "digest",
    "format_out_sum",
    "read_params",
    "verify_result",
]
