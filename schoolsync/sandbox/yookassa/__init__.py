"""A stateful fake of the YooKassa API v3 for one shop, and its HTTP notifications.

Written from YooKassa's docs (interaction format, HTTP codes, lists, webhooks), its OpenAPI
specification and its official SDKs (yookassa-sdk-python, yookassa-sdk-php), never from our
connector:

- ``/v3/payments`` POST and GET (list, newest first, ``next_cursor`` paging, ``created_at.*``
  and ``status`` filters), ``/v3/payments/{id}``, ``/v3/refunds`` POST,
  ``/v3/refunds/{id}``, ``/v3/me``. HTTP Basic auth with the shopId and the secret key (401
  ``invalid_credentials``). Every POST needs an ``Idempotence-Key``: a repeat with the same key
  and body answers the first result, another body under the same key is 400 ``Idempotence key
  duplicated``. Amounts are strings with at most two decimals. Error bodies are YooKassa's
  ``{"type": "error", "id", "code", "description", "parameter"}`` (details in ``errors``,
  ``api`` and ``payments``).
- Notifications (``payment.waiting_for_capture``, ``payment.succeeded``, ``payment.canceled``,
  ``refund.succeeded``) are POSTed as ``{"type": "notification", "event", "object"}`` to the
  configured URL, from this process (so from 127.0.0.1 when the URL is on loopback), and
  redelivered until a 200 (``notify``).
- ``/_sandbox/*``: payments in any status, moves that notify, the notification URL and log,
  faults (errors, 202 processing, timeouts, per path), the request limit (429), state, reset.

Not modelled: capture and cancel through the API, receipts, deals, payouts, saved payment
methods, ``GET /refunds`` lists, the 3-year window of lists, OAuth (partner API).
"""

from schoolsync.sandbox.yookassa.app import create_app
from schoolsync.sandbox.yookassa.config import YooKassaSandboxConfig
from schoolsync.sandbox.yookassa.shop import YooKassaSandbox

__all__ = ["YooKassaSandbox", "YooKassaSandboxConfig", "create_app"]
