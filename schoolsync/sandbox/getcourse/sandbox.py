"""One running sandbox: the account's data, its export desk, faults and callback sender."""

from __future__ import annotations

import hmac
import random
import threading

from schoolsync.sandbox.getcourse.callbacks import (
    CallbackDispatcher,
    placeholder_values,
    render_url,
)
from schoolsync.sandbox.getcourse.config import GetCourseSandboxConfig
from schoolsync.sandbox.getcourse.exports import ExportDesk
from schoolsync.sandbox.getcourse.faults import Faults
from schoolsync.sandbox.getcourse.model import Account, Deal


class GetCourseSandbox:
    def __init__(self, config: GetCourseSandboxConfig) -> None:
        self.config = config
        self.faults = Faults()
        self.dispatcher = CallbackDispatcher(
            max_attempts=config.callback_attempts,
            backoff_s=config.callback_backoff_s,
            max_backoff_s=config.callback_backoff_max_s,
        )
        self.callback_url = config.callback_url
        self.callback_method = config.callback_method.upper()
        self.lock = threading.RLock()
        self.account = Account(config)
        self.exports = self._new_desk()
        self.imports = {"ok": 0, "refused": 0}
        self.people = random.Random(0)  # noqa: S311 - made-up test data
        self.serial = 0

    def _new_desk(self) -> ExportDesk:
        return ExportDesk(
            budget=self.config.export_budget,
            window_s=self.config.export_window_s,
            ready_after_s=self.config.export_ready_after_s,
        )

    def key_ok(self, key: str | None) -> bool:
        return key is not None and hmac.compare_digest(key.encode(), self.config.key.encode())

    def notify(self, deal: Deal, times: int) -> None:
        """Run the order process `times` times: render the URL now, send it in the background.

        Call with `lock` held, so the values are those of this change.
        """
        if not self.callback_url or times <= 0:
            return
        url = render_url(self.callback_url, placeholder_values(self.account, deal))
        for _ in range(times):
            if self.faults.drop_callback():
                self.dispatcher.record_dropped(url, self.callback_method)
            else:
                self.dispatcher.submit(url, self.callback_method)

    def reset(self) -> None:
        """Empty the account, the export desk, the faults and the callback counts.

        The callback URL and method stay as they are: they are settings, not data.
        """
        with self.lock:
            self.account = Account(self.config)
            self.exports = self._new_desk()
            self.faults.clear()
            self.dispatcher.reset()
            self.imports = {"ok": 0, "refused": 0}
            self.people = random.Random(0)  # noqa: S311
            self.serial = 0

    def state(self) -> dict[str, object]:
        with self.lock:
            return {
                "orders": len(self.account.deals),
                "users": len(self.account.users),
                "payments": len(self.account.payments),
                "imports": dict(self.imports),
                "exports": self.exports.snapshot(),
                "callbacks": self.dispatcher.snapshot(),
                "faults": vars(self.faults.settings).copy(),
            }

    def close(self) -> None:
        self.dispatcher.close()
