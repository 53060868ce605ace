"""The composition root: settings are read once here, and everything is built from them."""

from __future__ import annotations

from dataclasses import dataclass

from dramatiq.middleware import Retries

from schoolsync.app.redis_embedded import embedded_url_file
from schoolsync.connectors.generic.webhooks import GenericWebhook
from schoolsync.connectors.inbound import WebhookSource
from schoolsync.core.config import AppConfig, load_config
from schoolsync.core.db import Database
from schoolsync.core.errors import ConfigError
from schoolsync.core.settings import Settings
from schoolsync.sync_jobs.actors import PROCESS_INBOX_EVENT, register_actors
from schoolsync.sync_jobs.broker import LedgerBroker, build_broker
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.middleware import JobLedger
from schoolsync.sync_jobs.queue import JobQueue
from schoolsync.sync_jobs.scheduler import Periodic
from schoolsync.sync_jobs.services.generic_events import process_generic_event
from schoolsync.sync_jobs.services.relay import RELAY_ACTOR

__all__ = ["PROCESS_INBOX_EVENT", "Runtime", "build_runtime"]


@dataclass
class Runtime:
    settings: Settings
    config: AppConfig
    db: Database
    broker: LedgerBroker
    queue: JobQueue
    context: JobContext

    @property
    def sources(self) -> dict[str, WebhookSource]:
        """Inbound webhook sources that are switched on (a source without its secret is off)."""
        found: dict[str, WebhookSource] = {}
        if self.settings.generic_secret is not None:
            found["generic"] = GenericWebhook(
                self.settings.generic_secret.get_secret_value().encode()
            )
        return found

    @property
    def schedule(self) -> list[Periodic]:
        return [Periodic(name="relay", actor=RELAY_ACTOR, every_s=self.settings.jobs.relay_every_s)]


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
    config = load_config(settings.config)
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
        processors={"generic": process_generic_event},
    )
    if with_actors:
        register_actors(broker, context, time_limit_ms=settings.jobs.time_limit_ms)
    return Runtime(settings, config, db, broker, queue, context)
