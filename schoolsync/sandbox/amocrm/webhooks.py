"""Account webhooks: ``leads[add]`` and ``leads[status]`` as amoCRM posts them.

Format (amocrm.ru "webhooks-format", Kommo "webhooks-general", and recorded payloads in
samples/amocrm_lead_status_webhook.txt): ``application/x-www-form-urlencoded`` with PHP-style
keys, one request per event block with items ``[0]``, ``[1]``..., the legacy v2 field names
(``date_create``, ``last_modified``, ``created_user_id``, ``custom_fields``), every value a
string, and an ``account[subdomain]``/``account[id]``/``account[_links][self]`` block.

Delivery is from a background thread so the API answer is never delayed. Kommo waits 2 s for a
2xx; failures are retried ``webhook_retries`` times with a doubling delay, then dropped and
counted.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx

from schoolsync.sandbox.amocrm.store import Entity, StatusChange

_IDLE_EXIT_S = 5.0


def php_pairs(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    """Flattens nested dicts and lists into ``prefix[key][0]=...`` pairs; drops ``None``."""
    if value is None:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from php_pairs(f"{prefix}[{key}]", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from php_pairs(f"{prefix}[{index}]", item)
    elif isinstance(value, bool):
        yield prefix, "1" if value else "0"
    else:
        yield prefix, str(value)


def lead_item(lead: Entity, change: StatusChange | None = None) -> dict[str, Any]:
    """A lead in the v2 shape webhooks still use."""
    item: dict[str, Any] = {
        "id": lead["id"],
        "name": lead["name"],
        "status_id": lead["status_id"],
    }
    if change is not None:
        item["old_status_id"] = change.old_status_id
    item.update(
        {
            "price": lead["price"],
            "responsible_user_id": lead["responsible_user_id"],
            "last_modified": lead["updated_at"],
            "modified_user_id": lead["updated_by"],
            "created_user_id": lead["created_by"],
            "date_create": lead["created_at"],
            "pipeline_id": lead["pipeline_id"],
        }
    )
    if change is not None and change.old_pipeline_id != lead["pipeline_id"]:
        item["old_pipeline_id"] = change.old_pipeline_id
    if lead["tags"]:
        item["tags"] = [{"id": t["id"], "name": t["name"]} for t in lead["tags"]]
    item["account_id"] = lead["account_id"]
    fields = []
    for entry in lead["custom_fields_values"] or []:
        field: dict[str, Any] = {"id": entry["field_id"], "name": entry["field_name"]}
        if entry["field_type"] in ("date", "date_time", "birthday"):
            field["values"] = [v["value"] for v in entry["values"]]
        else:
            field["values"] = [
                {"value": v["value"], **({"enum": v["enum_id"]} if "enum_id" in v else {})}
                for v in entry["values"]
            ]
        if entry["field_code"]:
            field["code"] = entry["field_code"]
        fields.append(field)
    if fields:
        item["custom_fields"] = fields
    item["created_at"] = lead["created_at"]
    item["updated_at"] = lead["updated_at"]
    return item


def encode(
    action: str, items: list[dict[str, Any]], *, subdomain: str, account_id: int, base: str
) -> str:
    pairs = list(php_pairs(f"leads[{action}]", items))
    pairs += php_pairs(
        "account", {"subdomain": subdomain, "id": account_id, "_links": {"self": base}}
    )
    return urlencode(pairs)


class WebhookSender:
    """A queue drained by one daemon thread, started on demand, gone after a quiet spell."""

    def __init__(self, url: str, *, timeout_s: float, retries: int, retry_delay_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._outstanding = 0
        self.sent = 0
        self.failed = 0
        self.failed_attempts = 0

    @property
    def pending(self) -> int:
        """Bodies queued or being delivered."""
        return self._outstanding

    def reset_counts(self) -> None:
        with self._lock:
            self.sent = self.failed = self.failed_attempts = 0

    def send(self, body: str) -> None:
        with self._lock:
            self._outstanding += 1
            self._queue.put(body)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="amocrm-sandbox-webhooks", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                try:
                    body = self._queue.get(timeout=_IDLE_EXIT_S)
                except queue.Empty:
                    with self._lock:
                        if self._queue.empty():
                            self._thread = None
                            return
                    continue
                delivered = False
                try:
                    delivered = self._deliver(client, body)
                finally:
                    with self._lock:
                        self._outstanding -= 1
                        if delivered:
                            self.sent += 1
                        else:
                            self.failed += 1

    def _deliver(self, client: httpx.Client, body: str) -> bool:
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.retry_delay_s * 2 ** (attempt - 1))
            try:
                response = client.post(
                    self.url,
                    content=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                if 100 <= response.status_code < 300:
                    return True
            except httpx.HTTPError:
                pass
            with self._lock:
                self.failed_attempts += 1
        return False
