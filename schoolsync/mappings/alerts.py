"""Failure alerts (W14): the ``rules.alerts`` config, failure classes, and when to post. No I/O.

The school's ``rules.alerts`` block (every key optional; the sweep runs when the school has the
channel under ``channels:``)::

    rules:
      alerts:
        enabled: true
        channel: admin              # a key of `channels:`
        spike_count: 20             # this many new failures of one class ...
        spike_window_min: 10        # ... within this many minutes is a spike
        spike_quiet_min: 60         # at most one spike message per class in this long
        base_url: https://sync.school.ru   # links to the admin page; without it, a CLI command

A failure *class* is the actor, the error class and the normalised message (:func:`normalise`):
one root cause, however many orders it hit. A class gets ONE message when it first appears
(never seen in ``failures`` before), and one more per spike; never one per failure.

What a message is, and whether it was posted, is its outbox key (``alert_key``): the class id is
``<family>.<variant>``, where the family is the message with every quoted value masked. A sweep
reads the keys posted so far (:class:`Posted`) and decides again (:func:`alerts_due`), so running
it twice posts nothing new.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schoolsync.core.config import School
from schoolsync.core.pii import EMAIL, PHONE, mask_text

TEMPLATE = "failure_alert"
# a class is new when no failure of it is older than this (a sweep runs every minute; an older
# one is history: seen before, or the sweep was off)
FIRST_LOOK_BACK = timedelta(hours=1)
# classes that differ only in a quoted value (one per unknown product): at most this many new
# ones are announced per family a day, so that a quoted value naming a person cannot turn into
# one message per failure
MAX_NEW_VARIANTS_PER_DAY = 10
CLASS_MESSAGE_LIMIT = 200  # characters of the normalised message that make the class
EXAMPLE_LIMIT = 300  # characters of the example error in a message


class AlertRules(BaseModel):
    """``rules.alerts`` of a school."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    channel: str = "admin"
    spike_count: int = Field(default=20, ge=2, le=100_000)
    spike_window_min: int = Field(default=10, ge=1, le=24 * 60)
    spike_quiet_min: int = Field(default=60, ge=1, le=7 * 24 * 60)
    base_url: str | None = None

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError("base_url must be an http(s) address like https://sync.school.ru")
        return value.rstrip("/")

    @property
    def spike_window(self) -> timedelta:
        return timedelta(minutes=self.spike_window_min)

    @property
    def spike_quiet(self) -> timedelta:
        return timedelta(minutes=self.spike_quiet_min)

    @property
    def look_back(self) -> timedelta:
        """How far back a sweep reads failures: the spike window, or the first-seen window."""
        return max(FIRST_LOOK_BACK, self.spike_window)

    def channels_used(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("channel",), self.channel)] if self.enabled else []


def alert_rules(school: School) -> AlertRules:
    return AlertRules.model_validate(school.block("rules.alerts") or {})


# --- classes ---------------------------------------------------------------------------------

_QUOTED = re.compile(r"(?<!\w)'([^'\n]*)'(?!\w)|(?<!\w)\"([^\"\n]*)\"(?!\w)|«([^»\n]*)»")
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b")
# a token of 8 or more letters, digits, '_' or '-' with both a letter and a digit: an id
_ID = re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9_-]{8,}(?![\w-])")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SPACES = re.compile(r"\s+")


def _phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "<phone>" if 10 <= len(digits) <= 15 else match.group(0)


def _personal(text: str) -> str:
    return PHONE.sub(_phone, EMAIL.sub("<email>", text))


def _ids(text: str) -> str:
    return _NUMBER.sub("<n>", _ID.sub("<id>", _UUID.sub("<id>", text)))


def _quoted(match: re.Match[str]) -> str:
    value = next(v for v in match.groups() if v is not None)
    value = _personal(value)
    if _ids(value).strip() in ("<n>", "<id>", ""):
        value = _ids(value)
    opening, closing = (match.group(0)[0], match.group(0)[-1])
    return f"{opening}{value}{closing}"


def normalise(message: str) -> str:
    """The part of an error message that names its cause, not its case.

    Emails, phones, ids (uuids, tokens mixing letters and digits) and numbers are replaced
    (``<email>``, ``<phone>``, ``<id>``, ``<n>``): they name the order or the person, and one
    root cause hits many of them. Quoted values (``'…'``, ``"…"``, ``«…»``) are kept as they
    are, unless the whole value is a number or an id: they name config keys, so
    ``unknown product 'A'`` and ``unknown product 'B'`` are two classes. Each needs its own fix
    under ``mappings:``, and the admin wants to hear of each distinct unknown product once (a
    replay after fixing 'A' resolves only A's failures). An email or phone inside quotes is
    still replaced. The result is cut to ``CLASS_MESSAGE_LIMIT`` characters.
    """
    parts: list[str] = []
    last = 0
    for match in _QUOTED.finditer(message):
        parts.append(_ids(_personal(message[last : match.start()])))
        parts.append(_quoted(match))
        last = match.end()
    parts.append(_ids(_personal(message[last:])))
    return _SPACES.sub(" ", "".join(parts)).strip()[:CLASS_MESSAGE_LIMIT]


def _digest(*parts: str, size: int) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:size]


@dataclass(frozen=True)
class FailureClass:
    """One root cause: the actor, the error class and the normalised message."""

    actor: str
    error_class: str
    message: str

    @property
    def family(self) -> str:
        """Classes that differ only in quoted values share a family (one per unknown product)."""
        masked = _QUOTED.sub("'…'", self.message)
        return _digest(self.actor, self.error_class, masked, size=10)

    @property
    def id(self) -> str:
        """``<family>.<variant>``: stable, short, fit for an outbox key."""
        return f"{self.family}.{_digest(self.actor, self.error_class, self.message, size=12)}"


def classify(actor: str, error_class: str, message: str) -> FailureClass:
    return FailureClass(actor, error_class, normalise(message))


@dataclass(frozen=True)
class SeenFailure:
    """A failure as the sweep reads it (``message`` unmasked: it is masked before it is shown)."""

    actor: str
    error_class: str
    message: str
    first_failed_at: datetime
    last_failed_at: datetime


def group(failures: Iterable[SeenFailure]) -> dict[FailureClass, list[SeenFailure]]:
    found: dict[FailureClass, list[SeenFailure]] = {}
    for failure in failures:
        key = classify(failure.actor, failure.error_class, failure.message)
        found.setdefault(key, []).append(failure)
    return found


# --- what was posted, and what is due --------------------------------------------------------

Kind = Literal["first", "spike"]


def alert_key(kind: Kind, school: str, cls: FailureClass, window_start: datetime) -> str:
    """``alert:first:<school>:<class id>`` (once ever) or
    ``alert:spike:<school>:<class id>:<window start, UTC minute>``."""
    if kind == "first":
        return f"alert:first:{school}:{cls.id}"
    return f"alert:spike:{school}:{cls.id}:{window_start.astimezone(UTC):%Y%m%dT%H%MZ}"


@dataclass(frozen=True)
class Posted:
    """An alert in the outbox: its kind, its class id, and when it was asked for."""

    kind: Kind
    class_id: str
    at: datetime

    @property
    def family(self) -> str:
        return self.class_id.split(".", 1)[0]


def posted_from(key: str, at: datetime) -> Posted | None:
    """The alert an outbox key names, or None for another message's key."""
    parts = key.split(":")
    if len(parts) < 4 or parts[0] != "alert" or parts[1] not in ("first", "spike"):
        return None
    return Posted("first" if parts[1] == "first" else "spike", parts[3], at)


@dataclass(frozen=True)
class FailureAlert:
    """One message: a new class (``new``), a spike (``spike``), or both at once."""

    cls: FailureClass
    new: bool
    spike: bool
    count: int  # failures of the class in the look-back (new), or in the spike window (spike)
    example: str  # masked
    window_start: datetime

    @property
    def kind(self) -> Kind:
        # a new class that is spiking already is one message, keyed as the spike, so that the
        # quiet time starts with it
        return "spike" if self.spike else "first"


def new_candidates(
    groups: Mapping[FailureClass, Sequence[SeenFailure]], posted: Sequence[Posted]
) -> list[FailureClass]:
    """Classes with no alert posted yet: the ones to look for in older failures."""
    announced = {p.class_id for p in posted}
    return sorted((c for c in groups if c.id not in announced), key=lambda c: c.id)


def alerts_due(
    groups: Mapping[FailureClass, Sequence[SeenFailure]],
    *,
    posted: Sequence[Posted],
    seen_before: Set[str],
    now: datetime,
    rules: AlertRules,
) -> list[FailureAlert]:
    """The alerts to post at ``now``.

    ``groups`` are the failures of the look-back by class, ``posted`` the alerts already in the
    outbox, ``seen_before`` the ids of classes with a failure older than the look-back.
    A class is new when nothing was posted for it and it was not seen before; it spikes when
    ``spike_count`` failures of it first failed within the spike window (a replay failing again
    is not a new failure) and no spike of it was posted within the quiet time.
    """
    announced = {p.class_id for p in posted}
    last_spike: dict[str, datetime] = {}
    first_post: dict[str, datetime] = {}
    for p in posted:
        if p.kind == "spike":
            last_spike[p.class_id] = max(p.at, last_spike.get(p.class_id, p.at))
        first_post[p.class_id] = min(p.at, first_post.get(p.class_id, p.at))
    variants: dict[str, int] = {}
    for class_id, at in first_post.items():
        if at > now - timedelta(days=1):
            family = class_id.split(".", 1)[0]
            variants[family] = variants.get(family, 0) + 1

    window_start = (now - rules.spike_window).replace(second=0, microsecond=0)
    due: list[FailureAlert] = []
    order = sorted(groups.items(), key=lambda kv: (min(f.first_failed_at for f in kv[1]), kv[0].id))
    for cls, failures in order:
        new = cls.id not in announced and cls.id not in seen_before
        if new and variants.get(cls.family, 0) >= MAX_NEW_VARIANTS_PER_DAY:
            new = False
        in_window = [f for f in failures if window_start <= f.first_failed_at <= now]
        quiet_since = last_spike.get(cls.id)
        spike = len(in_window) >= rules.spike_count and (
            quiet_since is None or quiet_since <= now - rules.spike_quiet
        )
        if not (new or spike):
            continue
        if new:
            variants[cls.family] = variants.get(cls.family, 0) + 1
        latest = max(failures, key=lambda f: f.last_failed_at)
        due.append(
            FailureAlert(
                cls=cls,
                new=new,
                spike=spike,
                count=len(in_window) if spike else len(failures),
                example=masked(latest.message),
                window_start=window_start,
            )
        )
    return due


def masked(text: str) -> str:
    """Text fit for a channel: personal data and secrets masked, cut short."""
    text = mask_text(text)
    return text if len(text) <= EXAMPLE_LIMIT else text[: EXAMPLE_LIMIT - 1] + "…"


def where_to_look(rules: AlertRules, cls: FailureClass) -> tuple[str | None, str]:
    """The admin page's filtered list (when ``base_url`` is set) and the CLI command."""
    command = (
        f"schoolsync failures list --actor {shlex.quote(cls.actor)} "
        f"--class {shlex.quote(cls.error_class)}"
    )
    if rules.base_url is None:
        return None, command
    query = urlencode({"actor": cls.actor, "class": cls.error_class})
    return f"{rules.base_url}/admin/failures?{query}", command
