"""The composition root: settings are read once here, and everything is built from them."""

from __future__ import annotations

from dataclasses import dataclass

from dramatiq.middleware import Retries

from schoolsync.app.platforms import (
    CONFIG_BLOCKS,
    build_mailers,
    build_platforms,
    webhook_sources,
    with_sandbox,
)
from schoolsync.app.redis_embedded import embedded_url_file
from schoolsync.connectors.generic.webhooks import GenericWebhook
from schoolsync.connectors.inbound import WebhookSource
from schoolsync.core.config import AppConfig, load_config
from schoolsync.core.db import Database
from schoolsync.core.errors import ConfigError
from schoolsync.core.settings import Settings
from schoolsync.mappings.alerts import alert_rules
from schoolsync.mappings.duplicates import duplicate_rules
from schoolsync.mappings.feedback import feedback_rules
from schoolsync.mappings.followups import followup_rules
from schoolsync.mappings.reports import report_rules
from schoolsync.mappings.sessions import session_rules
from schoolsync.mappings.sla import sla_rules
from schoolsync.sync_jobs.actors import register_actors
from schoolsync.sync_jobs.broker import LedgerBroker, build_broker
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.middleware import JobLedger
from schoolsync.sync_jobs.names import PROCESS_INBOX_EVENT
from schoolsync.sync_jobs.queue import JobQueue
from schoolsync.sync_jobs.scheduler import Periodic
from schoolsync.sync_jobs.services.crm_push import LANES, PUSH_ACTOR
from schoolsync.sync_jobs.services.crm_webhooks import process_amocrm_webhook
from schoolsync.sync_jobs.services.duplicates import DUPLICATES_ACTOR
from schoolsync.sync_jobs.services.export_sync import EXPORT_ACTOR
from schoolsync.sync_jobs.services.failure_alerts import ALERTS_ACTOR
from schoolsync.sync_jobs.services.feedback import SURVEY_ACTOR, process_feedback_api
from schoolsync.sync_jobs.services.followups import FOLLOWUP_ACTOR
from schoolsync.sync_jobs.services.generic_events import process_generic_event
from schoolsync.sync_jobs.services.manual_payments import process_payment_api
from schoolsync.sync_jobs.services.order_intake import (
    process_getcourse_callback,
    process_getcourse_callbacks,
)
from schoolsync.sync_jobs.services.outbox import SWEEP_ACTOR
from schoolsync.sync_jobs.services.provider_payments import (
    process_paypal_event,
    process_robokassa_result,
    process_yookassa_notification,
)
from schoolsync.sync_jobs.services.reconcile import RECONCILE_ACTOR
from schoolsync.sync_jobs.services.relay import RELAY_ACTOR
from schoolsync.sync_jobs.services.reports import REPORTS_ACTOR
from schoolsync.sync_jobs.services.sessions import SESSIONS_ACTOR
from schoolsync.sync_jobs.services.sla import SLA_ACTOR
from schoolsync.sync_jobs.services.telegram_inbound import process_telegram_update
from schoolsync.sync_jobs.services.telegram_updates import POLL_ACTOR

__all__ = [
    "FEEDBACK_API_SOURCE",
    "PAYMENTS_API_SOURCE",
    "PROCESS_INBOX_EVENT",
    "Runtime",
    "build_runtime",
]

FEEDBACK_API_SOURCE = "feedback-api"  # inbox source of POST /admin/api/feedback
PAYMENTS_API_SOURCE = "payments-api"  # inbox source of POST /admin/api/payments


@dataclass
class Runtime:
    settings: Settings
    config: AppConfig
    db: Database
    broker: LedgerBroker
    queue: JobQueue
    context: JobContext

    @property
    def sandbox(self) -> bool:
        return bool(self.settings.sandbox)

    @property
    def sources(self) -> dict[str, WebhookSource]:
        """Inbound webhook sources that are switched on (a source without its secret is off)."""
        found: dict[str, WebhookSource] = {}
        if self.settings.generic_secret is not None:
            found["generic"] = GenericWebhook(
                self.settings.generic_secret.get_secret_value().encode()
            )
        found.update(webhook_sources(self.settings, self.config, sandbox=self.sandbox))
        return found

    @property
    def schedule(self) -> list[Periodic]:
        schedule = [
            Periodic(name="relay", actor=RELAY_ACTOR, every_s=self.settings.jobs.relay_every_s)
        ]
        platforms = self.context.platforms
        if platforms and any(found.telegram for found in platforms.schools.values()):
            schedule.append(Periodic(name="notifications-sweep", actor=SWEEP_ACTOR, every_s=30))
        for school_id, found in (platforms.schools if platforms else {}).items():

            def sweep(name: str, actor: str, every_s: int, school_id: str = school_id) -> Periodic:
                """A job of this school, asked for every ``every_s`` (args: the school)."""
                return Periodic(
                    name=name,
                    actor=actor,
                    every_s=every_s,
                    school=school_id,
                    args={"school": school_id},
                )

            if found.amocrm is not None:
                schedule += [
                    Periodic(
                        name=f"crm-push-sweep-{lane}",
                        actor=PUSH_ACTOR,
                        every_s=60,
                        school=school_id,
                        args={"school": school_id, "lane": lane},
                    )
                    for lane in range(LANES)
                ]
            if found.telegram is not None and found.telegram.poll:
                schedule.append(
                    sweep("telegram-poll", POLL_ACTOR, self.settings.telegram_poll_every_s)
                )
            school = self.config.school(school_id)
            survey = feedback_rules(school).survey if school is not None else None
            if survey is not None and found.sheets is not None:
                schedule.append(sweep("feedback-survey", SURVEY_ACTOR, survey.every_s))
            if (
                found.getcourse is not None
                and found.telegram is not None
                and school is not None
                and sla_rules(school).enabled
                and sla_rules(school).channel in school.channels
            ):
                schedule.append(sweep("sla-sweep", SLA_ACTOR, 60))
            if (
                found.telegram is not None
                and school is not None
                and alert_rules(school).enabled
                and alert_rules(school).channel in school.channels
            ):
                schedule.append(sweep("failure-alerts-sweep", ALERTS_ACTOR, 60))
            # payment links need the orders, undecided leads only amoCRM
            if found.amocrm is not None and school is not None and followup_rules(school).runs():
                schedule.append(sweep("followups-sweep", FOLLOWUP_ACTOR, 600))
            # W12: the tick runs what is due (yesterday after daily_at, Monday: the week) once
            if school is not None and (
                report_rules(school).spreadsheet is not None
                or report_rules(school).channel in school.channels
            ):
                schedule.append(sweep("reports", REPORTS_ACTOR, 600))
            # W13: sessions from amoCRM or a sheet, reminders 24 h and 1 h before
            sessions = session_rules(school) if school is not None else None
            if sessions is not None and (
                (sessions.source == "amocrm" and found.amocrm is not None)
                or (sessions.source == "sheet" and found.sheets is not None)
            ):
                schedule.append(sweep("sessions-sweep", SESSIONS_ACTOR, sessions.every_s))
            if found.getcourse is not None and school is not None:
                schedule.append(sweep("reconcile", RECONCILE_ACTOR, 3600))
                if duplicate_rules(school).enabled:
                    schedule.append(sweep("duplicates-sweep", DUPLICATES_ACTOR, 300))
                schedule.append(
                    sweep("getcourse-export-sync", EXPORT_ACTOR, found.getcourse.export_every_s)
                )
        return schedule


def redis_url(settings: Settings) -> str:
    """The configured Redis, else the one a running ``schoolsync run`` started for this data dir."""
    if settings.redis_url:
        return settings.redis_url
    embedded = embedded_url_file(settings.data_dir)
    if embedded.exists():
        return embedded.read_text().strip()
    raise ConfigError(
        "SCHOOLSYNC_REDIS_URL is not set: point it at a Redis server, "
        "or use `schoolsync run`, which starts its own"
    )


def build_runtime(settings: Settings, *, with_actors: bool = False) -> Runtime:
    """Build the process's objects. Nothing connects until first used."""
    config = load_config(settings.config, blocks=CONFIG_BLOCKS)
    if settings.sandbox:
        config = with_sandbox(config, settings.sandbox_port, settings.data_dir)
    db = Database(settings.effective_database_url)
    broker = build_broker(redis_url(settings), broker=settings.broker, jobs=settings.jobs)
    # after_* hooks run in reverse order: before Retries means we see its decision
    broker.add_middleware(JobLedger(db, settings.jobs), before=Retries)
    queue = JobQueue(db, broker)
    context = JobContext(
        config=config,
        db=db,
        queue=queue,
        jobs=settings.jobs,
        data_dir=settings.data_dir,
        test_hooks=settings.test_hooks,
        processors={
            "generic": process_generic_event,
            "getcourse": process_getcourse_callback,
            "amocrm": process_amocrm_webhook,
            "telegram": process_telegram_update,
            FEEDBACK_API_SOURCE: process_feedback_api,
            PAYMENTS_API_SOURCE: process_payment_api,
            "yookassa": process_yookassa_notification,
            "robokassa": process_robokassa_result,
            "paypal": process_paypal_event,
        },
        batch_processors={"getcourse": process_getcourse_callbacks},
        platforms=build_platforms(
            settings, config, db, broker.client, sandbox=bool(settings.sandbox)
        ),
    )
    if with_actors:
        register_actors(
            broker,
            context,
            time_limit_ms=settings.jobs.time_limit_ms,
            mailers=build_mailers(settings, config, sandbox=bool(settings.sandbox)),
        )
    return Runtime(settings, config, db, broker, queue, context)
