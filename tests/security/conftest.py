"""Fixtures borrowed from the suites whose apps these tests attack."""

from __future__ import annotations

# the admin API's app, settings (three tokens) and rows: tests/app/test_admin_api.py
from tests.app.test_admin_api import app_settings, runtime

# the whole service as subprocesses with the sandboxes: tests/e2e
from tests.e2e.conftest import service_factory
from tests.e2e.test_w1_intake import w1

__all__ = ["app_settings", "runtime", "service_factory", "w1"]
