"""W8: follow-ups, as config and pure decisions. No I/O.

The school's ``rules.followups`` block (every key optional)::

    rules:
      followups:
        enabled: true                    # the payment-link follow-up
        after_hours: 24                  # the link went out this long ago and nothing was paid
        statuses: [in_work, payment_waiting]
        task_text: "Дожать: вчера отправлена ссылка на оплату"
        due_hours: 4                     # a task is due this long after it is made
        client_message: false            # also write to the client (Telegram, quiet hours apply)
        undecided:                       # leads that did not decide: reminders to their manager
          stage: 1003                    # amoCRM status id, an order status of mappings.amocrm
                                         # stages ("in_work"), or the stage's name in amoCRM
          pipeline: 1000                 # default: mappings.amocrm.pipeline_id
          reminders: 2
          within_days: 7
          after_days: [2, 5]             # default: spread evenly over within_days
          task_text: "Повторный контакт: клиент ещё не принял решение"
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schoolsync.connectors.amocrm.models import Pipeline
from schoolsync.core.config import School
from schoolsync.core.domain import Order, OrderStatus
from schoolsync.core.errors import ConfigError
from schoolsync.mappings.amocrm import AmoCrmMapping


class Undecided(BaseModel):
    """``rules.followups.undecided``: reminder tasks for leads sitting in one stage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    stage: int | str
    pipeline: int | None = None
    reminders: int = Field(default=2, ge=1, le=10)
    within_days: int = Field(default=7, ge=1, le=90)
    after_days: tuple[int, ...] | None = None
    task_text: str = Field(default="Повторный контакт: клиент ещё не принял решение", min_length=1)

    @model_validator(mode="after")
    def _steps(self) -> Undecided:
        given = self.after_days
        if (
            given is not None
            and "reminders" in self.model_fields_set
            and len(given) != self.reminders
        ):
            raise ValueError("after_days must name one day per reminder")
        days = self.days
        if not days or days[0] < 1 or any(b <= a for a, b in pairwise(days)):
            raise ValueError(
                "reminder days must be whole days from 1 up, each later than the last "
                "(fewer reminders, or a longer within_days)"
            )
        if days[-1] >= self.within_days:
            raise ValueError("every reminder must fall within within_days")
        return self

    @property
    def days(self) -> tuple[int, ...]:
        """The day after entering the stage of each reminder: ``after_days``, or the reminders
        spread evenly over the window (2 in 7 days: days 2 and 5)."""
        if self.after_days is not None:
            return self.after_days
        share = self.within_days / (self.reminders + 1)
        return tuple(max(1, round(share * (i + 1))) for i in range(self.reminders))

    def step_due(self, entered: datetime, now: datetime) -> int | None:
        """The reminder (0-based) whose day has come last, for a lead in the stage since
        ``entered``; ``None`` before the first and once the window is over. A sweep that
        missed a day makes the latest reminder, not a pile of them."""
        if now >= entered + timedelta(days=self.within_days):
            return None
        passed = [i for i, d in enumerate(self.days) if entered + timedelta(days=d) <= now]
        return passed[-1] if passed else None

    def stage_in(
        self, mapping: AmoCrmMapping | None, pipelines: list[Pipeline] | None, *, school: str
    ) -> tuple[int, int]:
        """``(pipeline_id, status_id)`` of the stage. ``pipelines`` (the account's) is needed
        only when :meth:`known_stage` says ``None``.

        Raises:
            ConfigError: no such stage, naming the config key.
        """
        known = self.known_stage(mapping)
        if known is not None:
            return known
        where = f"schools[{school}].rules.followups.undecided.stage"
        pipeline_id = self.pipeline or (mapping.pipeline_id if mapping is not None else None)
        wanted = str(self.stage).strip().casefold()
        for pipeline in pipelines or []:
            if pipeline_id is not None and pipeline.id != pipeline_id:
                continue
            for status in pipeline.statuses:
                if str(status.id) == wanted or status.name.strip().casefold() == wanted:
                    return pipeline.id, status.id
        raise ConfigError(
            f"{where}: no stage {self.stage!r} in "
            + (f"pipeline {pipeline_id}" if pipeline_id is not None else "any pipeline")
            + " of the amoCRM account"
        )

    def known_stage(self, mapping: AmoCrmMapping | None) -> tuple[int, int] | None:
        """The stage from the config alone: a status id with a known pipeline, or an order
        status that ``mappings.amocrm.stages`` maps."""
        pipeline_id = self.pipeline or (mapping.pipeline_id if mapping is not None else None)
        if pipeline_id is None:
            return None
        if isinstance(self.stage, int) or self.stage.strip().isdigit():
            return pipeline_id, int(self.stage)
        if mapping is not None and self.stage in OrderStatus.__members__.values():
            status_id = mapping.stages.get(OrderStatus(self.stage))
            if status_id is not None:
                return pipeline_id, status_id
        return None


class FollowupRules(BaseModel):
    """``rules.followups`` of a school."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    after_hours: int = Field(default=24, ge=1, le=24 * 30)
    statuses: list[OrderStatus] = [OrderStatus.IN_WORK, OrderStatus.PAYMENT_WAITING]
    task_text: str = Field(default="Дожать: вчера отправлена ссылка на оплату", min_length=1)
    due_hours: int = Field(default=4, ge=1, le=24 * 7)
    client_message: bool = False
    undecided: Undecided | None = None

    def runs(self) -> bool:
        """Anything for the sweep to do: the link follow-up, or undecided leads."""
        return self.enabled or (self.undecided is not None and self.undecided.enabled)


def followup_rules(school: School) -> FollowupRules:
    return FollowupRules.model_validate(school.block("rules.followups") or {})


def needs_followup(
    order: Order, link_since: datetime | None, paid: bool, now: datetime, rules: FollowupRules
) -> bool:
    """A payment link went out (the order in a waiting status, with a link, since
    ``link_since``) ``after_hours`` ago, and no money came."""
    return (
        not paid
        and order.status in rules.statuses
        and bool(order.payment_link)
        and link_since is not None
        and now - link_since >= timedelta(hours=rules.after_hours)
    )
