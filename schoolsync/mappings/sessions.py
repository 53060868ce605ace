"""W13: session reminders: the ``rules.sessions`` block, the sessions a source describes, and
when each reminder goes. Pure: no I/O.

    rules:
      sessions:
        source: sheet                      # or amocrm
        sheet: {spreadsheet: <id>, tab: "Сессии"}
        # amocrm:
        #   pipeline_id: 7001
        #   status_ids: [7002, 7003]       # stages where a session is booked
        #   cancelled_status_ids: [143]    # a lead here is a cancelled session
        #   start_field_id: 9001           # date-time custom field: the session's start
        #   psychologist_field_id: 9002    # optional; else the lead's responsible user id
        #   link_field_id: 9003            # optional
        psychologists: {"Анна Петрова": 123456789, "5550001": 987654321}  # name or user id: chat
        every_s: 300

The sheet has a header row; columns by name (Russian or English, any order): ``client``
(клиент), ``contact`` (контакт: an e-mail, a phone or a numeric Telegram chat id), ``psychologist``
(психолог), ``start`` (начало, «дата и время»: ``25.11.2026 15:00`` or ISO, school time unless
it carries an offset), ``link`` (ссылка), and optionally ``id`` (a stable id of the session;
without it the row number is the session's identity) and ``status`` (статус: «отменена» or
«cancelled» cancels the session). A row removed before its start cancels the session.

Reminders: 24 h before (moved to the end of quiet hours when that falls in the night, W11) and
1 h before (never moved). Both go to the client and to the psychologist.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schoolsync.core.config import School
from schoolsync.mappings.notifications import QuietHours

DAY, HOUR = "24h", "1h"
REMINDERS: dict[str, timedelta] = {DAY: timedelta(hours=24), HOUR: timedelta(hours=1)}
CANCELLED_WORDS = frozenset({"отменена", "отменен", "отменено", "отмена", "cancelled", "canceled"})


class AmoCrmSessions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline_id: int
    status_ids: list[int] = Field(min_length=1)
    cancelled_status_ids: list[int] = []
    start_field_id: int
    psychologist_field_id: int | None = None
    link_field_id: int | None = None


class SheetSessions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    spreadsheet: str = Field(min_length=1)
    tab: str = Field(min_length=1)


class SessionRules(BaseModel):
    """``rules.sessions`` of a school; no ``source``: no reminders."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["amocrm", "sheet"] | None = None
    amocrm: AmoCrmSessions | None = None
    sheet: SheetSessions | None = None
    psychologists: dict[str | int, int | str] = {}
    every_s: int = Field(default=300, ge=30, le=3600)
    email_subject: str = "Напоминание о сессии"

    @model_validator(mode="after")
    def _source_described(self) -> SessionRules:
        if self.source is not None and getattr(self, self.source) is None:
            raise ValueError(f"source {self.source!r} needs a `{self.source}:` block")
        return self

    @property
    def enabled(self) -> bool:
        return self.source is not None

    def psychologist_chat(self, psychologist: str | None) -> str | None:
        """The Telegram chat of a psychologist named (or identified) as the source says."""
        if not psychologist:
            return None
        wanted = psychologist.strip().casefold()
        for name, chat in self.psychologists.items():
            if str(name).strip().casefold() == wanted:
                return str(chat)
        return None


def session_rules(school: School) -> SessionRules:
    return SessionRules.model_validate(school.block("rules.sessions") or {})


@dataclass(frozen=True)
class ClientContact:
    email: str | None = None
    phone: str | None = None
    telegram: str | None = None  # a numeric chat id
    amocrm_contact: str | None = None

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}

    @classmethod
    def from_json(cls, data: dict[str, str] | None) -> ClientContact:
        data = data or {}
        return cls(**{k: data.get(k) for k in ("email", "phone", "telegram", "amocrm_contact")})


@dataclass(frozen=True)
class SessionInfo:
    """One session as the source says it now."""

    key: str
    start: datetime  # aware
    client: str | None = None
    contact: ClientContact = field(default_factory=ClientContact)
    psychologist: str | None = None
    link: str | None = None
    cancelled: bool = False


# -- when --------------------------------------------------------------------------------------


def reminder_due(start: datetime, kind: str, quiet: QuietHours, tz: ZoneInfo) -> datetime:
    """When reminder ``kind`` of a session starting at ``start`` goes (aware, UTC)."""
    due = start.astimezone(UTC) - REMINDERS[kind]
    if kind == DAY:
        due = quiet.not_before(due, tz)
    return due.astimezone(UTC)


def still_useful(start: datetime, kind: str, now: datetime) -> bool:
    """A reminder is pointless once its session started; the 24 h one also once the 1 h one
    is due (a session booked at short notice gets only what still makes sense)."""
    if kind == DAY:
        return now < start - REMINDERS[HOUR]
    return now < start


def time_tag(start: datetime) -> str:
    """The start as it appears in reminder keys: ``20261125T1200Z``."""
    return start.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


def day_word(sent_at: datetime, start: datetime, tz: ZoneInfo) -> str:
    """«сегодня» / «завтра» as seen on the day the reminder goes out (quiet hours can move a
    24 h reminder to the session's own morning); empty further away (the date says it)."""
    days = (start.astimezone(tz).date() - sent_at.astimezone(tz).date()).days
    return {0: "сегодня", 1: "завтра"}.get(days, "")


def shown_time(start: datetime, tz: ZoneInfo) -> str:
    """«25.11 в 15:00» in the school's time."""
    local = start.astimezone(tz)
    return f"{local:%d.%m} в {local:%H:%M}"


# -- parsing -----------------------------------------------------------------------------------

_MAX_ID = 60
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FORMATS = ("%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%y %H:%M", "%Y-%m-%d %H:%M")


def parse_start(text: str, tz: ZoneInfo) -> datetime | None:
    """A session start as people type it; naive times are in ``tz``. ``None`` if unreadable."""
    value = " ".join(text.strip().replace("T", " ", 1).split()) if text else ""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
        for fmt in _FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)  # noqa: DTZ007 - zone added below
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def parse_contact(text: str | None) -> ClientContact:
    """An e-mail, a phone, or a numeric Telegram chat id, as typed in one cell."""
    value = (text or "").strip()
    if not value:
        return ClientContact()
    if _EMAIL.match(value):
        return ClientContact(email=value)
    digits = re.sub(r"[\s()-]", "", value)
    if digits.startswith("+") or (digits.isdigit() and len(digits) in (10, 11)):
        return ClientContact(phone=digits)
    if digits.lstrip("-").isdigit():
        return ClientContact(telegram=digits)
    return ClientContact()


_COLUMNS = {
    "id": ("id", "ид", "номер"),
    "client": ("client", "клиент", "имя"),
    "contact": ("contact", "контакт", "email", "почта", "телефон", "telegram"),
    "psychologist": ("psychologist", "психолог"),
    "start": ("start", "start time", "начало", "дата и время", "время", "дата"),
    "link": ("link", "ссылка"),
    "status": ("status", "статус"),
}


def _header(row: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, cell in enumerate(row):
        name = cell.strip().casefold()
        for column, names in _COLUMNS.items():
            if name in names and column not in found:
                found[column] = index
    return found


def sheet_sessions(rows: list[list[str]], tz: ZoneInfo) -> tuple[list[SessionInfo], int]:
    """Sessions in a sheet (first row: the header); also how many rows were skipped (no
    readable start). Raises ``ValueError`` when the header lacks the start column."""
    if not rows:
        return [], 0
    columns = _header(rows[0])
    if "start" not in columns:
        raise ValueError("the sessions sheet has no start column (start / начало)")

    def cell(row: list[str], name: str) -> str:
        index = columns.get(name)
        return row[index].strip() if index is not None and index < len(row) else ""

    found: list[SessionInfo] = []
    skipped = 0
    for number, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        start = parse_start(cell(row, "start"), tz)
        if start is None:
            skipped += 1
            continue
        ident = cell(row, "id")
        if len(ident) > _MAX_ID:  # keys end up in reminder keys of bounded length
            ident = "h-" + hashlib.sha1(ident.encode(), usedforsecurity=False).hexdigest()[:20]
        found.append(
            SessionInfo(
                key=f"sheet:{ident}" if ident else f"sheet:row:{number}",
                start=start,
                client=cell(row, "client")[:200] or None,
                contact=parse_contact(cell(row, "contact")),
                psychologist=cell(row, "psychologist")[:120] or None,
                link=cell(row, "link") or None,
                cancelled=cell(row, "status").casefold() in CANCELLED_WORDS,
            )
        )
    return found, skipped


def amocrm_start(value: str, tz: ZoneInfo) -> datetime | None:
    """A date-time custom field's value: Unix seconds on the wire (or a typed date)."""
    text = value.strip()
    if text.lstrip("-").isdigit():
        try:
            return datetime.fromtimestamp(int(text), tz=UTC)
        except (ValueError, OverflowError, OSError):  # out of range: this lead only is skipped
            return None
    return parse_start(text, tz)
