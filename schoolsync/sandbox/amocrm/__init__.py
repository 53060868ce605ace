"""A stateful fake of amoCRM API v4, written from the platform's docs, never from our client.

``create_app(AmoSandboxConfig(...))`` is an ASGI app holding one account in memory:

- ``POST /oauth2/access_token``: authorization_code and refresh_token grants (``oauth.py``);
- ``/api/v4/...``: leads (list/get/add/update, ``/leads/complex``), contacts, lead notes,
  tasks, pipelines and statuses, users, custom fields, account; bearer token required;
  rate limited per account with 429 then a 403 block (``guards.py``);
- ``/_sandbox/...``: the control API for tests (``control.py``): state and counters, every
  lead and contact, authorization codes, moving a lead as a manager would, seeding leads,
  injected faults (errors, outages, latency, timeouts applied or not), reset;
- account webhooks (``leads[add]``, ``leads[status]``) posted form-urlencoded to
  ``webhook_url`` from a background thread (``webhooks.py``).

Sources: amoCRM/Kommo developer docs (leads-api, contacts-api, complex-leads, tasks-api,
leads_pipelines, users-api, custom-fields, account-info, webhooks-format, webhooks-general,
oauth-20, limitations, http-codes), the official PHP library amocrm/amocrm-api-php, and recorded
payloads under /work/shared/reference/samples. Where the docs are silent the choice made is
stated where it is implemented.
"""

from schoolsync.sandbox.amocrm.app import create_app
from schoolsync.sandbox.amocrm.config import (
    AmoEnum,
    AmoField,
    AmoPipeline,
    AmoSandboxConfig,
    AmoStatus,
    AmoUser,
)

__all__ = [
    "AmoEnum",
    "AmoField",
    "AmoPipeline",
    "AmoSandboxConfig",
    "AmoStatus",
    "AmoUser",
    "create_app",
]
