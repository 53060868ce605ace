"""Every table, as SQLAlchemy Core. Each row carries the school it belongs to.

``SYSTEM_SCHOOL`` marks rows that belong to the deployment, not to one school (the relay job).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

SYSTEM_SCHOOL = "_system"

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def _school() -> sa.Column[str]:
    return sa.Column("school", sa.String(40), nullable=False, index=True)


inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("dedup_key", sa.String(200), nullable=False),
    # received -> processed | failed; rejected rows are never processed
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reject_reason", sa.Text()),
    sa.Column("headers", JSONType, nullable=False),
    sa.Column("query", sa.Text(), nullable=False, server_default=""),
    sa.Column("body", sa.LargeBinary(), nullable=False),
    sa.Column("remote_addr", sa.String(64)),
    sa.Column("received_at", Timestamp, nullable=False),
    sa.Column("processed_at", Timestamp),
    sa.UniqueConstraint("school", "source", "dedup_key"),
    sa.Index("ix_inbox_status_received", "status", "received_at"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("queue", sa.String(40), nullable=False),
    sa.Column("args", JSONType, nullable=False),
    # what asked for it, unique: "inbox:17", "slot:relay_jobs:1763855400"
    sa.Column("dedup_key", sa.String(200), unique=True),
    # queued -> running -> done | retrying -> running ... | failed | dead
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("starts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("ends", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("owner", sa.String(64)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("enqueued_at", Timestamp),
    sa.Column("started_at", Timestamp),
    sa.Column("next_attempt_at", Timestamp),
    sa.Column("finished_at", Timestamp),
    sa.Column("last_error_class", sa.String(120)),
    sa.Column("last_error", sa.Text()),
    sa.Index("ix_jobs_status_created", "status", "created_at"),
)

job_attempts = sa.Table(
    "job_attempts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    sa.Column("job_id", sa.BigInteger(), sa.ForeignKey("jobs.id"), nullable=False, index=True),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("worker", sa.String(64)),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp),
    sa.Column("duration_ms", sa.Integer()),
    # ok | retry | failed | crashed (found unfinished when the job started again)
    sa.Column("outcome", sa.String(20)),
    sa.Column("error_class", sa.String(120)),
    sa.Column("error_message", sa.Text()),
)

failures = sa.Table(
    "failures",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    sa.Column("job_id", sa.BigInteger(), sa.ForeignKey("jobs.id"), nullable=False, unique=True),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("args", JSONType, nullable=False),
    sa.Column("error_class", sa.String(120), nullable=False),
    sa.Column("error_message", sa.Text(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    # open -> replaying -> resolved | open again; ignored
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("first_failed_at", Timestamp, nullable=False),
    sa.Column("last_failed_at", Timestamp, nullable=False),
    sa.Column("resolved_at", Timestamp),
    sa.Index("ix_failures_status_last", "status", "last_failed_at"),
)

effects = sa.Table(
    "effects",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    # deterministic: "amocrm:lead:create:gc-order:12345"
    sa.Column("key", sa.String(300), nullable=False, unique=True),
    sa.Column("job_id", sa.BigInteger()),
    sa.Column("detail", JSONType, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

links = sa.Table(
    "links",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    sa.Column("source_platform", sa.String(40), nullable=False),
    sa.Column("source_kind", sa.String(40), nullable=False),
    sa.Column("source_id", sa.String(120), nullable=False),
    sa.Column("target_platform", sa.String(40), nullable=False),
    sa.Column("target_kind", sa.String(40), nullable=False),
    sa.Column("target_id", sa.String(120), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint(
        "school", "source_platform", "source_kind", "source_id", "target_platform", "target_kind"
    ),
    # the other way round: which order is lead 987 (a lead's stage changed, W4)
    sa.Index("ix_links_target", "school", "target_platform", "target_kind", "target_id"),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("school", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("who", sa.String(120), nullable=False),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("target", sa.String(120), nullable=False),
    sa.Column("detail", JSONType, nullable=False),
    # pending -> succeeded | failed
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("job_id", sa.BigInteger()),
    sa.Column("finished_at", Timestamp),
    sa.Index("ix_audit_target", "target"),  # a failure's trail: target "failure:N"
)

schedule_slots = sa.Table(
    "schedule_slots",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("slot", sa.BigInteger(), nullable=False),
    sa.Column("job_id", sa.BigInteger()),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("school", "name", "slot"),
)

credentials = sa.Table(
    "credentials",
    metadata,
    # OAuth token pairs and the like that a platform hands us at run time (not config secrets).
    _school(),
    sa.Column("platform", sa.String(40), nullable=False),
    sa.Column("account", sa.String(120), nullable=False),
    sa.Column("data", JSONType, nullable=False),
    # bumped on every write: a compare-and-set guard for single-use refresh tokens
    sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.PrimaryKeyConstraint("school", "platform", "account"),
)

orders = sa.Table(
    "orders",
    metadata,
    # The mirror of platform orders (GetCourse deals) and where each stands on its way to the CRM.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    sa.Column("platform", sa.String(40), nullable=False),
    sa.Column("account", sa.String(120), nullable=False),
    sa.Column("number", sa.String(60), nullable=False),
    sa.Column("external_id", sa.String(60)),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("data", JSONType, nullable=False),  # the domain Order as JSON
    # bumped whenever data changes; the CRM push records which version it sent
    sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("crm_sent_version", sa.Integer()),
    sa.Column("created_at", Timestamp),  # on the platform
    sa.Column("updated_at", Timestamp, nullable=False),
    # when we learnt of its current status (a payment link follow-up counts from then)
    sa.Column("status_changed_at", Timestamp),
    # who set the current status: "platform" (a change on GetCourse), "crm" (a lead stage we
    # wrote to GetCourse, W4), NULL (as the order arrived); a conflict needs to know
    sa.Column("status_origin", sa.String(10)),
    # which of the parallel CRM pushes takes it: all orders of one person share a lane, so two
    # pushes never create the same new contact at once
    sa.Column("lane", sa.SmallInteger(), nullable=False, server_default="0"),
    # CRM push: none | pending -> sending -> synced | failed
    sa.Column("crm_state", sa.String(20), nullable=False, server_default="none"),
    sa.Column("crm_claim", sa.String(64)),
    sa.Column("crm_claimed_at", Timestamp),
    sa.Column("crm_maybe_sent_at", Timestamp),
    sa.Column("crm_tries", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("crm_error", sa.Text()),
    sa.Column("crm_synced_at", Timestamp),
    sa.UniqueConstraint("school", "platform", "account", "number"),
    sa.Index("ix_orders_crm_state", "school", "crm_state", "lane"),
)

contact_index = sa.Table(
    "contact_index",
    metadata,
    # Which CRM contact an email or E.164 phone belongs to, mirrored from the CRM incrementally.
    _school(),
    sa.Column("platform", sa.String(40), nullable=False),
    sa.Column("account", sa.String(120), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),  # email | phone
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("contact_id", sa.String(60), nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.PrimaryKeyConstraint("school", "platform", "account", "kind", "value"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    # Every message to a department channel or a client, delivered once, in order per chat.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    sa.Column("key", sa.String(200), nullable=False),  # deterministic: "feedback:42:channel"
    sa.Column("kind", sa.String(60), nullable=False),  # the template it was rendered from
    sa.Column("channel", sa.String(60)),  # a channel key from the config ("sales")
    sa.Column("chat_id", sa.String(40)),  # a direct chat (a client who started the bot)
    sa.Column("audience", sa.String(10), nullable=False),  # internal | client
    # messages of one lane go out one by one, in id order: one lane per Telegram chat
    sa.Column("lane", sa.String(80), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),  # Telegram HTML
    sa.Column("parts", JSONType, nullable=False),  # the text split to fit, in order
    sa.Column("sent_ids", JSONType, nullable=False),  # message id of each part sent so far
    # the next part was handed to Telegram then and no answer came back (yet): it may be there
    sa.Column("inflight_at", Timestamp),
    # pending -> sent | failed | cancelled
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("not_before", Timestamp, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("sent_at", Timestamp),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("error", sa.Text()),
    sa.UniqueConstraint("school", "key"),
    sa.Index("ix_outbox_due", "state", "not_before"),
    sa.Index("ix_outbox_lane", "school", "lane", "state", "id"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    # Feedback about a client (from teachers, clients, surveys) and where it was routed (W10).
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    sa.Column("key", sa.String(200), nullable=False),  # source + its own id: read twice, once
    sa.Column("source", sa.String(20), nullable=False),  # content | survey | api
    sa.Column("author_kind", sa.String(20), nullable=False),  # teacher | client | employee
    sa.Column("author", sa.String(200)),
    sa.Column("subject", sa.String(200)),  # the client or child as the author named them
    sa.Column("addressed_to", sa.String(200)),
    sa.Column("score", sa.Integer()),
    sa.Column("scale", sa.Integer()),  # 10 (NPS-style 0-10) or 5
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("contact_id", sa.String(60)),  # the CRM contact, once known
    sa.Column("data", JSONType, nullable=False),  # where it came from (chat and message, row)
    # unlinked (nobody found yet; asked in the group) -> routed
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("routed_at", Timestamp),
    sa.UniqueConstraint("school", "key"),
)

payments = sa.Table(
    "payments",
    metadata,
    # The ledger: every payment, whichever way the money came, once per (source, external id).
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    # yookassa | robokassa | paypal | card_transfer | bank_transfer | getcourse
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("external_id", sa.String(160), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),  # automatic | manual
    # succeeded | pending | canceled | refunded (only succeeded money counts)
    sa.Column("status", sa.String(20), nullable=False),
    # minor units (kopecks, cents): exact, never a float
    sa.Column("amount_minor", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("fee_minor", sa.BigInteger()),
    sa.Column("paid_at", Timestamp),
    sa.Column("payer_name", sa.String(200)),
    sa.Column("payer_email", sa.String(200)),
    sa.Column("payer_phone", sa.String(40)),
    sa.Column("reference", sa.String(120)),  # an order number the source or a person gave
    sa.Column("inbox_id", sa.BigInteger()),  # the raw notification it came from
    # unmatched -> matched | flagged (matched, but the amount differs from the order's cost)
    sa.Column("match_state", sa.String(12), nullable=False, server_default="unmatched"),
    sa.Column("order_number", sa.String(60)),
    sa.Column("match_rule", sa.String(40)),
    sa.Column("match_note", sa.Text()),
    sa.Column("data", JSONType, nullable=False),  # method, bank, comment, provider details
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("school", "source", "external_id"),
    sa.Index("ix_payments_match", "school", "match_state"),
    sa.Index("ix_payments_order", "school", "order_number"),
)

reconcile_items = sa.Table(
    "reconcile_items",
    metadata,
    # W7: what the reconciliation found that needs a person (or that it acted on), one row per
    # subject: the payment(s) of a verdict ("p:12" / "p:12,13"), or an order alone ("o:1234")
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # the verdict
    sa.Column("rule", sa.String(40), nullable=False),
    sa.Column("score", sa.Float(), nullable=False),
    sa.Column("explanation", sa.Text(), nullable=False),
    sa.Column("payment_ids", JSONType, nullable=False),  # ledger ids
    sa.Column("order_ids", JSONType, nullable=False),  # order numbers
    sa.Column("candidates", JSONType, nullable=False),  # order numbers a person compares
    # open (a person decides) -> resolved | dismissed (by a person); acted (the service did
    # what the config lets it); gone (a later run no longer finds it)
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("resolution", JSONType),  # who, when, what they chose
    sa.Column("first_seen_at", Timestamp, nullable=False),
    sa.Column("last_seen_at", Timestamp, nullable=False),
    sa.UniqueConstraint("school", "subject"),
    sa.Index("ix_reconcile_items_status", "school", "status"),
)

refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    sa.Column("payment_id", sa.BigInteger(), sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("external_id", sa.String(160), nullable=False),
    sa.Column("amount_minor", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    # requested -> confirmed -> sent -> done | failed
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text()),
    sa.Column("data", JSONType, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # the refund request it carries out (W9); NULL for a refund a provider told us of
    sa.Column("request_id", sa.BigInteger()),
    sa.UniqueConstraint("school", "source", "external_id"),
    sa.Index("ix_refunds_request", "request_id"),
)

refund_requests = sa.Table(
    "refund_requests",
    metadata,
    # W9: a client's refund, asked for (posted to the refunds channel), confirmed by an admin,
    # then carried out as one refunds row per payment of the order
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    sa.Column("order_number", sa.String(60), nullable=False),
    # requested -> confirmed -> done | failed (-> confirmed again when replayed)
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("card_last4", sa.String(4)),  # never the full number
    sa.Column("comment", sa.Text()),
    sa.Column("requested_by", sa.String(120), nullable=False),
    sa.Column("confirmed_by", sa.String(120)),
    sa.Column("error", sa.Text()),
    sa.Column("data", JSONType, nullable=False),  # what the request message showed
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("confirmed_at", Timestamp),
    sa.Column("finished_at", Timestamp),
    sa.Index("ix_refund_requests_order", "school", "order_number"),
)

bulk_replays = sa.Table(
    "bulk_replays",
    metadata,
    # W14: "replay every open failure matching this filter", run by a job, with its progress;
    # a person may cancel it (the job looks at ``cancel_requested`` between chunks)
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),  # the filter's school, or SYSTEM_SCHOOL for every school
    sa.Column("who", sa.String(120), nullable=False),
    sa.Column("filter", JSONType, nullable=False),
    # queued -> running -> done | cancelled | failed
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("total", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("done", sa.Integer(), nullable=False, server_default="0"),  # queued again
    sa.Column("skipped", sa.Integer(), nullable=False, server_default="0"),  # no longer open
    sa.Column("last_failure_id", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("max_failure_id", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("job_id", sa.BigInteger()),
    sa.Column("error", sa.Text()),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("started_at", Timestamp),
    sa.Column("finished_at", Timestamp),
)

sessions = sa.Table(
    "sessions",
    metadata,
    # W13: psychology sessions as the configured source (amoCRM pipeline or a sheet) last said;
    # reminders are keyed by (key, start_at), so a new start means new reminders
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _school(),
    sa.Column("key", sa.String(120), nullable=False),  # "amocrm:lead:123", "sheet:<id or row>"
    sa.Column("start_at", Timestamp, nullable=False),
    sa.Column("client", sa.String(200)),
    # how to reach the client: email, phone, telegram chat, amoCRM contact id (personal data)
    sa.Column("contact", JSONType, nullable=False),
    sa.Column("psychologist", sa.String(120)),
    sa.Column("link", sa.Text()),
    # scheduled | cancelled
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("school", "key"),
    sa.Index("ix_sessions_start", "school", "start_at"),
)
