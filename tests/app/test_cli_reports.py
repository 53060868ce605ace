"""``schoolsync report daily | weekly``: any past period, the same output as the job, safely
rerun (against the sandboxes, as tests/sync_jobs/test_reports.py)."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
from typer.testing import CliRunner

from schoolsync.app import cli_reports
from schoolsync.app.cli import app
from tests.sync_jobs.test_payments import Setup
from tests.sync_jobs.test_reports import reports, seed, setup, tab

__all__ = ["reports", "setup"]


def test_report_daily_and_weekly_for_a_past_period(
    setup: Setup, reports: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(setup)
    runtime = SimpleNamespace(config=setup.ctx.config, context=setup.ctx)
    monkeypatch.setattr(cli_reports, "_runtime", lambda: runtime)
    runner = CliRunner()

    first = runner.invoke(app, ["report", "daily", "--date", "2026-11-10"])
    again = runner.invoke(app, ["report", "daily", "--date", "2026-11-10"])
    weekly = runner.invoke(app, ["report", "weekly", "--week", "2026-W46"])
    wrong = runner.invoke(app, ["report", "weekly", "--week", "2026-46"])

    assert first.exit_code == 0 and again.exit_code == 0, first.output
    assert first.output.splitlines()[:5] == again.output.splitlines()[:5]
    assert "Заказы: 3, в работе 2, оплачено 1" in first.output
    assert "digest queued" in first.output and "digest already sent" in again.output
    assert [r[0] for r in tab(reports, "Ежедневный")] == ["Период", "2026-11-10"]
    assert weekly.exit_code == 0 and "chart sent" in weekly.output
    assert wrong.exit_code == 1 and "ISO week" in wrong.output
