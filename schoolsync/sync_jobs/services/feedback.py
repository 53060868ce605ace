"""W10: feedback from teachers (the КОНТЕНТ group), survey sheets and the API, routed once.

Each piece of feedback is stored under its source's own key (a Telegram message, a survey row's
content, an API request id), linked to the client's CRM contact (by phone or email in it, by
the name written first, or by a reply to one of our messages), added as a note on the contact
(once: a marker in the note lets a retry after a lost answer find it), and posted to the
feedback channel and wherever the routing rules say (negative scores flagged at the top). When
nobody is found, a teacher's feedback is asked about in the group; a reply naming the client
links it. Survey and API feedback with nobody found is posted anyway, marked so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from schoolsync.connectors.amocrm.models import NewNote
from schoolsync.connectors.sheets.a1 import sheet_range
from schoolsync.connectors.telegram.models import Message
from schoolsync.core.config import School
from schoolsync.core.errors import (
    ConfigError,
    MalformedInputError,
    PermanentError,
    SchoolsyncError,
)
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import effects, inbox, jobs, links
from schoolsync.core.stores import feedback as store
from schoolsync.core.stores import outbox as outbox_store
from schoolsync.mappings.feedback import (
    SOURCE_LABELS,
    Draft,
    FeedbackRules,
    Survey,
    feedback_rules,
    is_negative,
    name_queries,
    people_for,
    read_teacher_message,
    routes_for,
    survey_answers,
    survey_draft,
)
from schoolsync.mappings.notifications import render
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import AmoCrmSetup, SheetsSetup
from schoolsync.sync_jobs.services.outbox import (
    Notice,
    lanes_of_chat,
    queue_notices,
)

log = get_logger(__name__)

SURVEY_ACTOR = "feedback_survey_poll"
SURVEY_ROW_ACTOR = "feedback_survey_row"
WHO_KIND = "feedback_who"
FIRST_LESSON_KIND = "first_lesson"
_MARKER = "schoolsync feedback #"


def _amocrm(ctx: JobContext, school: str) -> AmoCrmSetup | None:
    return ctx.platforms.of(school).amocrm if ctx.platforms else None


# --- intake ----------------------------------------------------------------------------------


def intake(
    ctx: JobContext,
    school: School,
    draft: Draft,
    *,
    contact_id: str | None = None,
    origin: dict[str, Any] | None = None,
    ask: bool = False,
) -> int:
    """Store ``draft`` (once per key), link and route it; returns the feedback id.

    With ``ask``, feedback nobody could be linked to waits and is asked about in the intake
    group; without it, it is routed unlinked.
    """
    with ctx.db.write() as conn:
        row = store.add(
            conn,
            school.id,
            {
                "key": draft.key,
                "source": draft.source,
                "author_kind": draft.author_kind,
                "author": draft.author,
                "subject": draft.subject,
                "addressed_to": draft.addressed_to,
                "score": draft.score,
                "scale": draft.scale,
                "text": draft.text,
                "contact_id": contact_id,
                "data": {
                    **(origin or {}),
                    "phone": draft.phone,
                    "email": draft.email,
                },
            },
        )
    feedback_id = int(row["id"])
    if row["state"] == store.ROUTED:
        return feedback_id
    contact = row["contact_id"] or _find_contact(ctx, school.id, draft)
    if contact is None and ask:
        _ask_who(ctx, school, feedback_id, draft)
        return feedback_id
    _route(ctx, school, feedback_id, contact)
    return feedback_id


def _find_contact(ctx: JobContext, school: str, draft: Draft) -> str | None:
    """The CRM contact the feedback is about: by phone or email we know, else by asking the
    CRM (phone, email, then the name both ways round); ``None`` unless exactly one."""
    setup = _amocrm(ctx, school)
    if setup is None:
        return None
    with ctx.db.read() as conn:
        for kind, value in (("phone", draft.phone), ("email", draft.email)):
            if value:
                known = links.find_contacts(conn, school, "amocrm", setup.account, kind, [value])
                if value in known:
                    return known[value]
    queries = [q for q in (draft.phone, draft.email) if q]
    queries += name_queries(draft.subject) if draft.subject else []
    for query in queries:
        found = {c.id for c in setup.client.find_contacts(query)}
        if len(found) == 1:
            return str(found.pop())
        if len(found) > 1:
            log.info("several CRM contacts match the feedback; asking", school=school)
            return None
    return None


def _ask_who(ctx: JobContext, school: School, feedback_id: int, draft: Draft) -> None:
    rules = feedback_rules(school)
    html = render(WHO_KIND, author=draft.author, guess=draft.subject)
    with ctx.db.write() as conn:
        refs = queue_notices(
            conn,
            school,
            [
                Notice(
                    key=f"feedback-who:{feedback_id}",
                    kind=WHO_KIND,
                    html=html,
                    channel=rules.intake_channel,
                )
            ],
        )
    ctx.queue.send(refs)
    log.info("feedback names nobody we know; asked in the group", feedback=feedback_id)


def _route(ctx: JobContext, school: School, feedback_id: int, contact_id: str | None) -> None:
    rules = feedback_rules(school)
    with ctx.db.read() as conn:
        row = store.get(conn, feedback_id)
    assert row is not None
    draft = _draft_of(row)
    subject = draft.subject
    if contact_id is not None:
        setup = _amocrm(ctx, school.id)
        if setup is not None:
            _note_once(ctx, school.id, setup, feedback_id, int(contact_id), draft)
            if not subject:
                subject = setup.client.get_contact(int(contact_id)).display_name
    notices = _notices(school, rules, feedback_id, draft, subject, linked=contact_id is not None)
    with ctx.db.write() as conn:
        if contact_id is not None:
            store.link(conn, feedback_id, contact_id, subject)
        refs = queue_notices(conn, school, notices)
        store.mark_routed(conn, feedback_id)
    ctx.queue.send(refs)
    log.info(
        "feedback routed",
        school=school.id,
        feedback=feedback_id,
        source=draft.source,
        linked=contact_id is not None,
        channels=[n.channel for n in notices],
    )


def _notices(
    school: School,
    rules: FeedbackRules,
    feedback_id: int,
    draft: Draft,
    subject: str | None,
    *,
    linked: bool,
) -> list[Notice]:
    html = render(
        "feedback",
        negative=is_negative(draft.score, draft.scale, rules),
        score=draft.score,
        scale_max=draft.scale,
        source_label=SOURCE_LABELS.get(draft.source, draft.source),
        subject=subject,
        author=draft.author,
        addressed_to=draft.addressed_to,
        text=draft.text,
        crm_url=None,
        unlinked=not linked,
    )
    channels = routes_for(draft, rules)
    notices = [
        Notice(key=f"feedback:{feedback_id}:{channel}", kind="feedback", html=html, channel=channel)
        for channel in channels
    ]
    for name, person in people_for(draft, rules):
        if person.channel is not None and person.channel in channels:
            continue  # that group has it already
        notices.append(
            Notice(
                key=f"feedback:{feedback_id}:person:{name}",
                kind="feedback",
                html=html,
                channel=person.channel,
                chat_id=person.chat_id,
            )
        )
    return notices


def _note_once(
    ctx: JobContext,
    school: str,
    setup: AmoCrmSetup,
    feedback_id: int,
    contact_id: int,
    draft: Draft,
) -> None:
    """The feedback as a note on the contact, once. An earlier try that got no answer may have
    made the note: the contact's notes are read for our marker before writing again."""
    done_key = f"amocrm:note:feedback:{school}:{feedback_id}"
    try_key = f"{done_key}:tried"
    marker = f"{_MARKER}{feedback_id}"
    with ctx.db.write() as conn:
        if effects.exists(conn, done_key):
            return
        first_try = effects.record(
            conn, school=school, key=try_key, job_id=None, detail={"contact": contact_id}
        )
    if not first_try and any(marker in n.text for n in setup.client.notes("contacts", contact_id)):
        log.info("the feedback note is on the contact already", feedback=feedback_id)
    else:
        label = SOURCE_LABELS.get(draft.source, draft.source)
        score = f", оценка {draft.score} из {draft.scale}" if draft.score is not None else ""
        author = f" ({draft.author})" if draft.author else ""
        text = f"Обратная связь {label}{author}{score}:\n{draft.text}\n\n[{marker}]"
        setup.client.add_notes([NewNote.common(contact_id, text)], entity="contacts")
    with ctx.db.write() as conn:
        effects.record(
            conn, school=school, key=done_key, job_id=None, detail={"contact": contact_id}
        )


def _draft_of(row: Any) -> Draft:
    data = row["data"] or {}
    return Draft(
        key=str(row["key"]),
        source=str(row["source"]),
        author_kind=str(row["author_kind"]),
        author=row["author"],
        subject=row["subject"],
        addressed_to=row["addressed_to"],
        score=row["score"],
        scale=int(row["scale"] or 10),
        text=str(row["text"]),
        phone=data.get("phone"),
        email=data.get("email"),
    )


# --- Telegram: teachers write in the intake group ----------------------------------------------


def from_intake_group(ctx: JobContext, school: School, message: Message) -> None:
    """A message in the intake group: a teacher's feedback, or a reply to our question."""
    assert message.text is not None
    author = _author(message)
    origin = {"chat_id": message.chat.id, "message_id": message.message_id}
    replied = message.reply_to_message
    if replied is not None and replied.from_bot:
        ours = _our_message(ctx, school.id, message.chat.id, replied.message_id)
        if ours is not None:
            kind, key = ours
            if kind == WHO_KIND:
                _answer_to_who(ctx, school, int(key.rsplit(":", 1)[1]), message)
                return
            if kind == FIRST_LESSON_KIND:
                contact = key.split(":")[1]
                note = read_teacher_message(message.text)
                draft = Draft(
                    key=f"telegram:{message.chat.id}:{message.message_id}",
                    source="content",
                    author=author,
                    subject=note.subject,
                    text=note.text,
                    phone=note.phone,
                    email=note.email,
                )
                known = contact if contact.isdigit() else None  # a lead without a contact
                intake(ctx, school, draft, contact_id=known, origin=origin, ask=known is None)
                return
    note = read_teacher_message(message.text)
    draft = Draft(
        key=f"telegram:{message.chat.id}:{message.message_id}",
        source="content",
        author_kind="teacher",
        author=author,
        subject=note.subject,
        text=note.text,
        phone=note.phone,
        email=note.email,
    )
    intake(ctx, school, draft, origin=origin, ask=True)


def _author(message: Message) -> str | None:
    person = message.from_user
    if person is None:
        return None
    name = " ".join(p for p in (person.first_name, person.last_name) if p)
    return name or person.username


def _our_message(
    ctx: JobContext, school: str, chat_id: int, message_id: int
) -> tuple[str, str] | None:
    """``(kind, key)`` of the outbox message that became Telegram message ``message_id``."""
    with ctx.db.read() as conn:
        lanes = lanes_of_chat(conn, school, str(chat_id))
        return outbox_store.sent_as(conn, school, lanes, (WHO_KIND, FIRST_LESSON_KIND), message_id)


def _answer_to_who(ctx: JobContext, school: School, feedback_id: int, reply: Message) -> None:
    """A reply to "who is this about?": link the waiting feedback, or post it unlinked."""
    assert reply.text is not None
    with ctx.db.write() as conn:
        row = store.get(conn, feedback_id)
        if row is None or not store.claim_for_linking(conn, feedback_id):
            return  # routed already, or another reply is linking it
    note = read_teacher_message(reply.text)
    subject = note.subject or reply.text.strip().splitlines()[0][:200]
    probe = Draft(
        key="reply", source="content", subject=subject, text="", phone=note.phone, email=note.email
    )
    try:
        contact = _find_contact(ctx, school.id, probe)
        if contact is None:
            log.info(
                "the reply names nobody we know either; posting unlinked", feedback=feedback_id
            )
        else:
            with ctx.db.write() as conn:
                store.link(conn, feedback_id, contact, subject)
        _route(ctx, school, feedback_id, contact)
    except BaseException:
        with ctx.db.write() as conn:  # let the retry (or the next reply) take it again
            store.release_linking(conn, feedback_id)
        raise


# --- the API ---------------------------------------------------------------------------------


def process_feedback_api(ctx: JobContext, inbox_id: int, job_id: int | None) -> None:
    """Feedback posted to ``/admin/api/feedback`` (stored in the inbox first)."""
    with ctx.db.read() as conn:
        row = inbox.get(conn, inbox_id)
    if row is None:
        raise ConfigError(f"inbox row {inbox_id} does not exist")
    school = ctx.school(str(row["school"]))
    try:
        data = json.loads(bytes(row["body"]))
        draft = Draft.model_validate({**data.pop("draft"), "key": str(row["dedup_key"])})
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedInputError(
            f"stored API feedback {inbox_id} is not readable: {exc}"
        ) from None
    intake(ctx, school, draft, contact_id=data.get("contact_id"), origin={"inbox_id": inbox_id})
    with ctx.db.write() as conn:
        inbox.mark_processed(conn, inbox_id)


# --- survey sheets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyPoll:
    read: int
    routed: int
    bad: int


def _survey(ctx: JobContext, school_id: str) -> tuple[School, Survey, SheetsSetup] | None:
    school = ctx.school(school_id)
    survey = feedback_rules(school).survey
    sheets = ctx.platforms.of(school_id).sheets if ctx.platforms else None
    if survey is None or sheets is None:
        return None
    return school, survey, sheets


def _read_tab(sheets: SheetsSetup, survey: Survey) -> list[list[str]]:
    """Every row of the answers tab, the header first (a whole-tab range never reaches past
    the sheet's grid, as ``A{n}:Z`` would once the answers stop)."""
    return sheets.client.get_values(survey.spreadsheet, sheet_range(survey.tab))


def _row_key(survey: Survey, cells: list[str]) -> str:
    """A row's identity is its content: read twice, or moved by a sort, it is one feedback."""
    digest = hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode()).hexdigest()[:24]
    return f"survey:{survey.spreadsheet}:{survey.tab}:{digest}"


def poll_survey(ctx: JobContext, school_id: str) -> SurveyPoll:
    """Read the survey sheet and route every row not seen before (a row's key is its content:
    read twice, moved by a sort, or with rows deleted above it, it is the same feedback). A row
    that cannot be read or routed is a failure naming its row; the others go on. Negative
    answers are routed first."""
    found = _survey(ctx, school_id)
    if found is None:
        return SurveyPoll(0, 0, 0)
    school, survey, sheets = found
    rows = _read_tab(sheets, survey)
    header = rows[0] if rows else []
    keyed = [(number, cells, _row_key(survey, cells)) for number, cells in enumerate(rows, 1)]
    keyed = keyed[1:]
    with ctx.db.read() as conn:
        seen = store.known_keys(conn, school_id, [key for _n, _c, key in keyed])
        bad_before = {
            key
            for _n, _c, key in keyed
            if key not in seen and jobs.get_by_key(conn, _bad_row_key(school_id, key)) is not None
        }
    drafts: list[tuple[int, Draft, dict[str, str]]] = []
    bad = 0
    for number, cells, key in keyed:
        if key in seen or key in bad_before:
            continue
        try:
            draft = survey_draft(survey, header, cells, row_number=number, key=key)
        except MalformedInputError as exc:
            bad += 1
            _bad_row(ctx, school_id, key, exc)
            continue
        if draft is not None:
            drafts.append((number, draft, survey_answers(header, cells)))
    rules = feedback_rules(school)
    # negative answers first: they are what the improvements department acts on
    drafts.sort(key=lambda item: (not is_negative(item[1].score, item[1].scale, rules), item[0]))
    routed = 0
    for _number, draft, answers in drafts:
        try:
            intake(
                ctx,
                school,
                draft,
                origin={"sheet": survey.spreadsheet, "tab": survey.tab, "answers": answers},
            )
        except PermanentError as exc:  # this row only (the CRM refused its note, ...)
            bad += 1
            _bad_row(ctx, school_id, draft.key, exc)
            continue
        routed += 1
    return SurveyPoll(len(keyed) - len(seen), routed, bad)


def _bad_row_key(school: str, key: str) -> str:
    return f"survey-row:{school}:{key}"


def _bad_row(ctx: JobContext, school: str, key: str, exc: SchoolsyncError) -> None:
    """One failure per bad row (replayed after the row is fixed in the sheet)."""
    with ctx.db.write() as conn:
        jobs.fail_as_job(
            conn,
            school=school,
            actor=SURVEY_ROW_ACTOR,
            args={"school": school, "key": key},
            key=_bad_row_key(school, key),
            error_class=type(exc).__name__,
            error=exc.message,
        )
    log.error("survey row not routed", school=school, error=exc.message)


def reread_survey_row(ctx: JobContext, school_id: str, key: str) -> None:
    """A failed survey row, replayed: if the row is still in the sheet as it was, it is routed
    again (after a config or CRM fix) or fails again; if it was fixed in the sheet (so its
    content, and key, changed), the fixed row is a new row that the next poll routes.

    Raises:
        MalformedInputError: the row is still in the sheet and still not readable.
    """
    found = _survey(ctx, school_id)
    if found is None:
        raise ConfigError(f"school {school_id!r} has no survey sheet (rules.feedback.survey)")
    school, survey, sheets = found
    rows = _read_tab(sheets, survey)
    for number, cells in enumerate(rows[1:], 2):
        if _row_key(survey, cells) == key:
            draft = survey_draft(survey, rows[0], cells, row_number=number, key=key)
            if draft is not None:
                origin = {
                    "sheet": survey.spreadsheet,
                    "tab": survey.tab,
                    "answers": survey_answers(rows[0], cells),
                }
                intake(ctx, school, draft, origin=origin)
            return
    log.info("the failed survey row was changed or removed; new rows are polled", row=key)
