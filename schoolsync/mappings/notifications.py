"""What a notification says and when it may go: templates, quiet hours, channel targets.

Pure: no I/O. Templates are Jinja2 files in ``mappings/templates/`` (one per message kind,
Russian, Telegram HTML). Every value is HTML-escaped by the template engine, so a client named
``<b>Маша</b>`` is shown as typed and cannot break the message. The school's
``rules.notifications`` block::

    rules:
      notifications:
        quiet_hours: {start: "22:00", end: "08:00"}   # messages to clients wait for the morning
        client_timezone: Europe/Moscow                # default: the school's timezone

Internal channels (department groups) have no quiet hours (W11).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from pydantic import BaseModel, ConfigDict, field_validator

from schoolsync.core.config import ChannelTarget, School
from schoolsync.core.errors import ConfigError

TEMPLATE_SUFFIX = ".html.j2"


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time = time(22, 0)
    end: time = time(8, 0)

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def not_before(self, now: datetime, tz: ZoneInfo) -> datetime:
        """``now`` if it is outside quiet hours in ``tz``, else the end of the quiet hours
        (the next ``end`` o'clock, local time), as an aware datetime in ``now``'s zone."""
        local = now.astimezone(tz)
        if not self.contains(local.timetz().replace(tzinfo=None)):
            return now
        morning = datetime.combine(local.date(), self.end, tzinfo=tz)
        if morning <= local:
            morning = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=tz)
        return morning.astimezone(now.tzinfo)


class NotificationRules(BaseModel):
    """``rules.notifications`` of a school."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quiet_hours: QuietHours = QuietHours()
    client_timezone: str | None = None

    @field_validator("client_timezone")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def client_tz(self, school: School) -> ZoneInfo:
        return ZoneInfo(self.client_timezone or school.timezone)


def notification_rules(school: School) -> NotificationRules:
    return NotificationRules.model_validate(school.block("rules.notifications") or {})


def channel_target(school: School, key: str) -> ChannelTarget:
    """The Telegram chat (and topic) of a channel key from ``channels:``.

    Raises:
        ConfigError: the channel is not configured (naming it and where to add it).
    """
    value = school.channels.get(key)
    if value is None:
        raise ConfigError(
            f"channel {key!r} is not configured: add `channels: {{{key}: <chat id>}}` "
            f"to school {school.id!r} in schoolsync.yaml"
        )
    if isinstance(value, ChannelTarget):
        return value
    return ChannelTarget(chat_id=value)


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def _load(name: str) -> str | None:
    path = resources.files("schoolsync.mappings") / "templates" / name
    return path.read_text(encoding="utf-8") if path.is_file() else None


def template_names() -> list[str]:
    folder = resources.files("schoolsync.mappings") / "templates"
    return sorted(
        p.name.removesuffix(TEMPLATE_SUFFIX)
        for p in folder.iterdir()
        if p.name.endswith(TEMPLATE_SUFFIX)
    )


def render(kind: str, **values: Any) -> str:
    """The message of ``kind`` (a template name) with ``values``, as Telegram HTML.

    Raises:
        ConfigError: no such template, or a value the template needs is missing.
    """
    try:
        template = _environment().get_template(kind + TEMPLATE_SUFFIX)
        text = template.render(**values)
    except jinja2.TemplateNotFound:
        raise ConfigError(f"no message template {kind!r} in mappings/templates") from None
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"message template {kind!r}: {exc.message}") from None
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return "\n".join(lines)
