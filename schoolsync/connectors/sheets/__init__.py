"""Google Sheets API v4 with a service account: reading form answers, appending rows without
duplicates, and updating report rows in place. Facts and their sources are in the module
docstrings and in ``tests/fixtures/sheets/README.md``.
"""

from schoolsync.connectors.sheets.a1 import column_index, column_letters, quote_sheet, sheet_range
from schoolsync.connectors.sheets.auth import SCOPE, ServiceAccountTokens
from schoolsync.connectors.sheets.client import Pacer, SheetsClient, TokenSource, UpsertResult
from schoolsync.connectors.sheets.config import SheetsAccount
from schoolsync.connectors.sheets.models import AppendResult, BatchUpdateResult, UpdateResult

__all__ = [
    "SCOPE",
    "AppendResult",
    "BatchUpdateResult",
    "Pacer",
    "ServiceAccountTokens",
    "SheetsAccount",
    "SheetsClient",
    "TokenSource",
    "UpdateResult",
    "UpsertResult",
    "column_index",
    "column_letters",
    "quote_sheet",
    "sheet_range",
]
