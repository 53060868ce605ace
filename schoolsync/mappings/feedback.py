"""W10 feedback: what a teacher's message or a survey row says, and where it goes. Pure.

The school's ``rules.feedback`` block (every key optional)::

    rules:
      feedback:
        channel: feedback              # every piece of feedback goes here (ОБРАТНАЯ СВЯЗЬ)
        intake_channel: content        # teachers write feedback here (КОНТЕНТ)
        negative_max: 6                # 0-10 answers of 0..6 are flagged negative
        negative_max_5: 3              # 1-5 answers of 1..3 are flagged negative
        routes:                        # extra copies, first matching rules all apply
          - {to: pedagogical, source: content}
          - {to: marketing, max_score: 6}
          - {to: instructors, keywords: ["поход", "лагерь"]}
        people:                        # feedback naming a person is duplicated to them
          "Кирилл Бесчастный": {channel: pedagogical}
          "Анна": {chat_id: 123456789}
        survey:                        # a Google Form's answer sheet
          spreadsheet: 1AbC...         # the spreadsheet id
          tab: "Ответы на форму (1)"
          every_s: 300
          columns:                     # header of each column in the sheet
            time: "Отметка времени"
            email: "Адрес электронной почты"
            subject: "ФИО ребенка"
            score: "Оценка (0–10)"
            text: "Комментарий"
        first_lesson:                  # a lead reaching this stage: the teacher is reminded
          stage_id: 1003
          channel: content
          teacher_field_id: 5010       # the lead's custom field naming the teacher (optional)
        second_feedback:               # W10's second feedback call, by the head teacher
          stage_ids: [2001, 2002]      # «8–20 занятий», «более 20»
          head_teacher_user_id: 11     # amoCRM user who gets the task
          due_days: 2
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schoolsync.core.config import School
from schoolsync.core.domain import normalize_email, normalize_phone
from schoolsync.core.errors import MalformedInputError

SOURCE_LABELS = {
    "content": "от педагога (КОНТЕНТ)",
    "survey": "анкета",
    "api": "через API",
    "crm": "из CRM",
}


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    to: str  # a channel key
    source: str | None = None
    max_score: int | None = None
    min_score: int | None = None
    keywords: list[str] = []


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str | None = None
    chat_id: int | None = None

    @model_validator(mode="after")
    def _one(self) -> Person:
        if (self.channel is None) == (self.chat_id is None):
            raise ValueError("give a channel or a chat_id (one of them)")
        return self


class SurveyColumns(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    time: str = "Отметка времени"
    email: str | None = "Адрес электронной почты"
    phone: str | None = None
    subject: str | None = "ФИО ребенка"
    score: str | None = "Оценка (0–10)"
    text: str = "Комментарий"


class Survey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    spreadsheet: str = Field(min_length=1)
    tab: str = Field(min_length=1)
    every_s: int = Field(default=300, ge=30)
    scale: int = Field(default=10, ge=5, le=10)
    columns: SurveyColumns = SurveyColumns()


class FirstLesson(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stage_id: int
    channel: str = "content"
    teacher_field_id: int | None = None


class SecondFeedback(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stage_ids: list[int] = Field(min_length=1)
    head_teacher_user_id: int
    due_days: int = Field(default=2, ge=0, le=30)


class FeedbackRules(BaseModel):
    """``rules.feedback`` of a school."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str = "feedback"
    intake_channel: str = "content"
    negative_max: int = Field(default=6, ge=0, le=10)
    negative_max_5: int = Field(default=3, ge=1, le=5)
    routes: list[Route] = []
    people: dict[str, Person] = {}
    survey: Survey | None = None
    first_lesson: FirstLesson | None = None
    second_feedback: SecondFeedback | None = None

    def channels_used(self) -> list[tuple[tuple[str | int, ...], str]]:
        """``(where in the block, channel key)`` of every channel this block sends to."""
        used: list[tuple[tuple[str | int, ...], str]] = [
            (("channel",), self.channel),
            (("intake_channel",), self.intake_channel),
        ]
        used += [(("routes", i, "to"), r.to) for i, r in enumerate(self.routes)]
        used += [
            (("people", name, "channel"), p.channel) for name, p in self.people.items() if p.channel
        ]
        if self.first_lesson is not None:
            used.append((("first_lesson", "channel"), self.first_lesson.channel))
        return used


class Draft(BaseModel):
    """One piece of feedback as it arrived, before it is linked to a client."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    source: str  # content | survey | api
    author_kind: str = "teacher"  # teacher | client | employee
    author: str | None = None
    subject: str | None = None
    addressed_to: str | None = None
    score: int | None = None
    scale: int = 10
    text: str
    phone: str | None = None
    email: str | None = None


def feedback_rules(school: School) -> FeedbackRules:
    return FeedbackRules.model_validate(school.block("rules.feedback") or {})


def is_negative(score: int | None, scale: int, rules: FeedbackRules) -> bool:
    if score is None:
        return False
    return score <= (rules.negative_max_5 if scale == 5 else rules.negative_max)


def routes_for(draft: Draft, rules: FeedbackRules) -> list[str]:
    """Channel keys that get this feedback: the feedback channel first, then matching routes."""
    found = [rules.channel]
    folded = draft.text.casefold()
    for route in rules.routes:
        if route.source is not None and route.source != draft.source:
            continue
        if route.max_score is not None and (draft.score is None or draft.score > route.max_score):
            continue
        if route.min_score is not None and (draft.score is None or draft.score < route.min_score):
            continue
        if route.keywords and not any(k.casefold() in folded for k in route.keywords):
            continue
        if route.to not in found:
            found.append(route.to)
    return found


def people_for(draft: Draft, rules: FeedbackRules) -> list[tuple[str, Person]]:
    """People the feedback is addressed to (named in ``addressed_to`` or in the text)."""
    haystack = f"{draft.addressed_to or ''}\n{draft.text}"
    return [
        (name, person)
        for name, person in rules.people.items()
        # whole words only: "Анна" is not in "Марианна"
        if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", haystack, re.IGNORECASE)
    ]


# --- a teacher's message ---------------------------------------------------------------------

_PHONE = re.compile(r"(?:\+7|8)?[\s(-]*9\d{2}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NAME_WORD = r"[A-ZА-ЯЁ][a-zа-яё]+(?:-[A-ZА-ЯЁ][a-zа-яё]+)?"
_LEAD_NAME = re.compile(rf"^\s*({_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})\s*[:—–-]\s*")
_ANY_NAME = re.compile(rf"\b({_NAME_WORD}\s+{_NAME_WORD})\b")


@dataclass(frozen=True)
class TeacherNote:
    subject: str | None  # the client or child as named ("Демин Саша")
    phone: str | None
    email: str | None
    text: str


def read_teacher_message(text: str) -> TeacherNote:
    """Who a teacher's message is about: a phone or email in it, and a name written first
    (``Демин Саша: ...``, ``Саша Демин — ...``) or else the first two capitalised words."""
    body = text.strip()
    phone_match = _PHONE.search(body)
    email_match = _EMAIL.search(body)
    subject: str | None = None
    lead = _LEAD_NAME.match(body)
    if lead is not None:
        subject = " ".join(lead.group(1).split())
    else:
        first_line = body.splitlines()[0] if body else ""
        anywhere = _ANY_NAME.search(first_line)
        if anywhere is not None:
            subject = " ".join(anywhere.group(1).split())
    return TeacherNote(
        subject=subject,
        phone=normalize_phone(phone_match.group(0)) if phone_match else None,
        email=normalize_email(email_match.group(0)) if email_match else None,
        text=body,
    )


def name_queries(subject: str) -> list[str]:
    """What to search the CRM for: the name as written and with its words swapped."""
    words = subject.split()
    queries = [" ".join(words)]
    if len(words) == 2:
        queries.append(f"{words[1]} {words[0]}")
    return queries


# --- a survey row ----------------------------------------------------------------------------

_SCORE = re.compile(r"^\s*(\d{1,2})(?:\s*(?:из|/)\s*\d{1,2})?\s*$")


def survey_answers(header: Sequence[str], row: Sequence[str]) -> dict[str, str]:
    """Every answered column of a survey row by its header (what the reports read: CSI's
    questions, FCR's "solved at the first contact")."""
    return {
        name.strip(): row[i].strip()
        for i, name in enumerate(header)
        if name.strip() and i < len(row) and row[i].strip()
    }


def survey_draft(
    survey: Survey, header: Sequence[str], row: Sequence[str], *, row_number: int, key: str
) -> Draft | None:
    """The feedback in one answer row (``None`` for an empty row).

    Raises:
        MalformedInputError: a column the config names is missing from the header, or the
            score is not a whole number on the survey's scale (naming the row and column).
    """
    columns = survey.columns
    index = {name.strip(): i for i, name in enumerate(header)}

    def cell(column: str | None) -> str | None:
        if column is None:
            return None
        if column not in index:
            raise MalformedInputError(
                f"survey sheet {survey.tab!r} has no column {column!r} "
                f"(rules.feedback.survey.columns; the header has: {', '.join(index) or 'nothing'})"
            )
        at = index[column]
        value = row[at].strip() if at < len(row) else ""
        return value or None

    text = cell(columns.text)
    raw_score = cell(columns.score)
    if text is None and raw_score is None:
        return None
    score: int | None = None
    if raw_score is not None:
        match = _SCORE.match(raw_score)
        low = 1 if survey.scale == 5 else 0
        if match is None or not low <= int(match.group(1)) <= survey.scale:
            raise MalformedInputError(
                f"survey sheet {survey.tab!r} row {row_number}, column {columns.score!r}: "
                f"the score is not a whole number from {low} to {survey.scale}"
            )
        score = int(match.group(1))
    return Draft(
        key=key,
        source="survey",
        author_kind="client",
        subject=cell(columns.subject),
        score=score,
        scale=survey.scale,
        text=text or "(без комментария)",
        phone=normalize_phone(cell(columns.phone)),
        email=normalize_email(cell(columns.email)),
    )
