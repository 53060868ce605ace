"""W10 triggers from the CRM: a lead reaching a configured stage.

- ``rules.feedback.first_lesson.stage_id``: the client's first lesson is booked; the teacher is
  reminded in the intake group: «Фамилия Имя будет в первый раз, не забудьте обратную связь».
  A reply to that message is feedback about that client.
- ``rules.feedback.second_feedback.stage_ids`` («8–20 занятий», «более 20»): the head teacher gets
  an amoCRM task on the lead with the client's contact and their first feedback, for the second
  feedback call.

The lead is re-read from amoCRM before acting (a webhook has no signature), and each action is
done once per lead and stage (an outbox key, an effects key).
"""

from __future__ import annotations

from datetime import timedelta

from schoolsync.connectors.amocrm.models import Contact, Lead
from schoolsync.connectors.amocrm.webhooks import LeadEvent
from schoolsync.core.clock import utcnow
from schoolsync.core.config import School
from schoolsync.core.domain import normalize_phone
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import feedback as feedback_store
from schoolsync.mappings.feedback import feedback_rules
from schoolsync.mappings.notifications import render
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import AmoCrmSetup
from schoolsync.sync_jobs.services.crm_tasks import task_once
from schoolsync.sync_jobs.services.outbox import Notice, queue_notices

log = get_logger(__name__)


def on_lead_event(ctx: JobContext, school: School, setup: AmoCrmSetup, event: LeadEvent) -> None:
    rules = feedback_rules(school)
    if event.status_id is None or event.action not in ("add", "status", "update"):
        return
    first = rules.first_lesson
    second = rules.second_feedback
    wanted = (first is not None and event.status_id == first.stage_id) or (
        second is not None and event.status_id in second.stage_ids
    )
    if not wanted:
        return
    lead = setup.client.get_lead(event.id)
    if lead.status_id != event.status_id:
        log.info("lead moved on since the webhook; nothing to do", lead=event.id)
        return
    contact_id = lead.main_contact_id
    contact = setup.client.get_contact(contact_id) if contact_id is not None else None
    if first is not None and lead.status_id == first.stage_id:
        _first_lesson(ctx, school, lead, contact, first.teacher_field_id, first.channel)
    if second is not None and lead.status_id in second.stage_ids:
        _second_feedback(
            ctx, school, setup, lead, contact, second.head_teacher_user_id, second.due_days
        )


def _name(contact: Contact | None) -> str:
    if contact is None:
        return "Клиент без контакта"
    return contact.display_name or "Клиент"


def _first_lesson(
    ctx: JobContext,
    school: School,
    lead: Lead,
    contact: Contact | None,
    teacher_field: int | None,
    channel: str,
) -> None:
    teacher = None
    if teacher_field is not None:
        values = lead.field_values(teacher_field)
        teacher = values[0] if values else None
    html = render("first_lesson", teacher=teacher, client=_name(contact), lesson=None)
    contact_key = contact.id if contact is not None else "none"
    with ctx.db.write() as conn:
        refs = queue_notices(
            conn,
            school,
            [
                Notice(
                    key=f"first-lesson:{contact_key}:{lead.id}",
                    kind="first_lesson",
                    html=html,
                    channel=channel,
                )
            ],
        )
    ctx.queue.send(refs)
    log.info("first lesson: teacher reminded", school=school.id, lead=lead.id)


def _second_feedback(
    ctx: JobContext,
    school: School,
    setup: AmoCrmSetup,
    lead: Lead,
    contact: Contact | None,
    head_teacher: int,
    due_days: int,
) -> None:
    key = f"amocrm:task:second-feedback:{school.id}:{lead.id}:{lead.status_id}"
    with ctx.db.read() as conn:
        first = (
            feedback_store.first_for_contact(conn, school.id, str(contact.id))
            if contact is not None
            else None
        )
    phones = _phones(contact)
    lines = [
        f"Вторая обратная связь: позвонить клиенту {_name(contact)}",
        f"Телефон: {', '.join(phones)}" if phones else "Телефон: не указан",
        "Первая обратная связь: " + (str(first["text"]) if first is not None else "нет"),
    ]
    if task_once(
        ctx,
        school.id,
        setup,
        key=key,
        lead_id=lead.id,
        text="\n".join(lines),
        due=utcnow() + timedelta(days=due_days),
        responsible_user_id=head_teacher,
    ):
        log.info("second feedback: task for the head teacher", school=school.id, lead=lead.id)


def _phones(contact: Contact | None) -> list[str]:
    if contact is None:
        return []
    found = []
    for field in contact.custom_fields_values or []:
        if (field.field_code or "") == "PHONE":
            for value in field.values:
                phone = normalize_phone(str(value.value)) or str(value.value)
                found.append(phone)
    return found
