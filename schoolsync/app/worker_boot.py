"""The module ``dramatiq`` imports in every worker process: builds that process's runtime.

Importing it is how Dramatiq's CLI finds the broker and actors (``dramatiq
schoolsync.app.worker_boot``); run it through ``schoolsync worker``.
"""

from __future__ import annotations

import dramatiq

from schoolsync.app.bootstrap import build_runtime
from schoolsync.core.heartbeat import heartbeat_path, start_heartbeat
from schoolsync.core.logging import configure_logging
from schoolsync.core.sentry import init_sentry
from schoolsync.core.settings import Settings

_settings = Settings()
configure_logging(fmt=_settings.log_format, level=_settings.log_level)
init_sentry(_settings, "worker")  # before the broker: the Dramatiq integration patches it
runtime = build_runtime(_settings, with_actors=True)
broker = runtime.broker
dramatiq.set_broker(broker)
start_heartbeat(heartbeat_path(_settings.data_dir, "worker"))  # `schoolsync healthcheck worker`
