"""One running sandbox project: its service accounts, tokens, spreadsheets, quotas and faults."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from schoolsync.sandbox.sheets.auth import (
    AccessTokens,
    Grant,
    ServiceAccount,
    generate_account,
    key_file,
    registered_account,
)
from schoolsync.sandbox.sheets.book import Spreadsheet, new_spreadsheet
from schoolsync.sandbox.sheets.config import SheetsSandboxConfig
from schoolsync.sandbox.sheets.errors import NO_CREDENTIALS, GoogleError, unauthenticated
from schoolsync.sandbox.sheets.faults import Faults
from schoolsync.sandbox.sheets.quota import Kind, Quotas

_COUNTS = (
    "requests",
    "reads",
    "writes",
    "tokens_issued",
    "token_refusals",
    "rate_limited",
    "errors",
    "faults",
)
_NOT_FOUND = "Requested entity was not found."
_NO_PERMISSION = "The caller does not have permission"
_SCOPES = "Request had insufficient authentication scopes."


class SheetsSandbox:
    def __init__(self, config: SheetsSandboxConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.account: ServiceAccount = generate_account(config.service_account)
        self.accounts: dict[str, ServiceAccount] = {self.account.email: self.account}
        for email, pem in config.extra_accounts.items():
            self.accounts[email] = registered_account(email, pem)
        self.tokens = AccessTokens(config.token_lifetime_s)
        self.quotas = Quotas(config.per_minute)
        self.faults = Faults()
        self._load()
        if config.key_file_path:
            self._write_key_file(config.key_file_path, config.token_uri or "")

    def _write_key_file(self, path: str, token_uri: str) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".tmp")
        partial.write_text(
            json.dumps(key_file(self.account, self.config.project_id, token_uri)),
            encoding="utf-8",
        )
        partial.chmod(0o600)
        partial.replace(target)

    def _load(self) -> None:
        self.books: dict[str, Spreadsheet] = {
            spreadsheet_id: new_spreadsheet(spreadsheet_id, tabs, {self.account.email})
            for spreadsheet_id, tabs in self.config.spreadsheets.items()
        }
        self.counts: dict[str, int] = dict.fromkeys(_COUNTS, 0)

    # -- access ---------------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> Grant:
        """The grant behind ``Authorization: Bearer <token>``, or Google's 401."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated(NO_CREDENTIALS)
        grant = self.tokens.lookup(token.strip())
        if grant is None:
            raise unauthenticated()
        return grant

    def open(self, spreadsheet_id: str, grant: Grant, kind: Kind) -> Spreadsheet:
        """The spreadsheet, if ``grant`` may ``kind`` it: else 403 (scopes, sharing) or 404.

        Call with ``lock`` held.
        """
        if not (grant.can_write() if kind == "write" else grant.can_read()):
            raise GoogleError(403, _SCOPES)
        book = self.books.get(spreadsheet_id)
        if book is None:
            raise GoogleError(404, _NOT_FOUND)
        if grant.email not in book.shared_with:
            raise GoogleError(403, _NO_PERMISSION)
        return book

    # -- bookkeeping ----------------------------------------------------------------------------
    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                **self.counts,
                "per_minute": self.quotas.per_minute,
                "quota_used": self.quotas.used(),
                "spreadsheets": {
                    book.id: {title: tab.used_rows() for title, tab in book.tabs.items()}
                    for book in self.books.values()
                },
                "fault_rules": self.faults.rules(),
            }

    def reset(self) -> None:
        """Spreadsheets back to the configured ones; counts, quotas, limits and faults cleared.

        Keys and access tokens stay valid: a downloaded key file and a running client keep working.
        """
        with self.lock:
            self._load()
            self.faults.clear()
            self.quotas.reset()
            self.quotas.set_limit(self.config.per_minute)
