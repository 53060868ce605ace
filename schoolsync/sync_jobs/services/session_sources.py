"""W13: read the sessions from the configured source (an amoCRM pipeline, or a sheet).

Both answer the whole list of booked sessions, so that one missing since the last sweep can
be told apart from one never seen. amoCRM lists leads without their contacts: a lead's client
(name, e-mail, phone) is read once, when its session is first seen (``known`` says which are),
and kept in the ``sessions`` row.
"""

from __future__ import annotations

from collections.abc import Mapping
from zoneinfo import ZoneInfo

from schoolsync.connectors.amocrm.models import Lead
from schoolsync.connectors.sheets.a1 import sheet_range
from schoolsync.core.config import School
from schoolsync.core.errors import ConfigError
from schoolsync.core.logging import get_logger
from schoolsync.mappings.sessions import (
    AmoCrmSessions,
    ClientContact,
    SessionInfo,
    SessionRules,
    amocrm_start,
    sheet_sessions,
)
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import AmoCrmSetup

log = get_logger(__name__)


def read_sessions(
    ctx: JobContext,
    school: School,
    rules: SessionRules,
    known: Mapping[str, tuple[str | None, ClientContact]],
) -> list[SessionInfo]:
    """Every session the source lists now (cancelled ones flagged).

    ``known``: session key -> (client name, contact) already stored, not read again.

    Raises:
        ConfigError: the source's platform is not configured for the school.
    """
    platforms = ctx.platforms.of(school.id) if ctx.platforms else None
    if rules.source == "sheet":
        assert rules.sheet is not None
        sheets = platforms.sheets if platforms else None
        if sheets is None:
            raise ConfigError(
                f"rules.sessions of school {school.id!r} reads a sheet, but no accounts.sheets"
            )
        rows = sheets.client.get_values(rules.sheet.spreadsheet, sheet_range(rules.sheet.tab))
        try:
            found, skipped = sheet_sessions(rows, school.tz)
        except ValueError as exc:
            raise ConfigError(f"sessions sheet of school {school.id!r}: {exc}") from None
        if skipped:
            log.warning("session rows without a readable start", school=school.id, rows=skipped)
        return found
    if rules.source == "amocrm":
        assert rules.amocrm is not None
        setup = platforms.amocrm if platforms else None
        if setup is None:
            raise ConfigError(
                f"rules.sessions of school {school.id!r} reads amoCRM, but no accounts.amocrm"
            )
        return _amocrm_sessions(setup, rules.amocrm, school.tz, known)
    return []


def _amocrm_sessions(
    setup: AmoCrmSetup,
    config: AmoCrmSessions,
    tz: ZoneInfo,
    known: Mapping[str, tuple[str | None, ClientContact]],
) -> list[SessionInfo]:
    found: list[SessionInfo] = []
    stages = [(s, False) for s in config.status_ids]
    stages += [(s, True) for s in config.cancelled_status_ids]
    for status_id, cancelled in stages:
        for lead in setup.client.leads_in_stage(config.pipeline_id, status_id):
            session = _lead_session(setup, config, tz, lead, cancelled, known)
            if session is not None:
                found.append(session)
    return found


def _lead_session(
    setup: AmoCrmSetup,
    config: AmoCrmSessions,
    tz: ZoneInfo,
    lead: Lead,
    cancelled: bool,
    known: Mapping[str, tuple[str | None, ClientContact]],
) -> SessionInfo | None:
    values = lead.field_values(config.start_field_id)
    start = amocrm_start(values[0], tz) if values else None
    if start is None:
        return None
    key = f"amocrm:lead:{lead.id}"
    if config.psychologist_field_id is not None:
        named = lead.field_values(config.psychologist_field_id)
        psychologist = named[0][:120] if named else None
    else:
        psychologist = str(lead.responsible_user_id) if lead.responsible_user_id else None
    links = lead.field_values(config.link_field_id) if config.link_field_id else []
    stored = known.get(key)
    if stored is not None:
        client, contact = stored
    elif cancelled:  # nobody is reminded of it: not worth two reads
        client, contact = None, ClientContact()
    else:
        client, contact = _client_of(setup, lead.id)
    return SessionInfo(
        key=key,
        start=start,
        client=client,
        contact=contact,
        psychologist=psychologist,
        link=links[0] if links else None,
        cancelled=cancelled,
    )


def _client_of(setup: AmoCrmSetup, lead_id: int) -> tuple[str | None, ClientContact]:
    """The lead's main contact: its name and how to write to it (two reads, once per session)."""
    contact_id = setup.client.get_lead(lead_id, with_contacts=True).main_contact_id
    if contact_id is None:
        return None, ClientContact()
    contact = setup.client.get_contact(contact_id)
    emails, phones = contact.emails(), contact.phones()
    name = contact.first_name or contact.display_name
    return name[:200] if name else None, ClientContact(
        email=emails[0] if emails else None,
        phone=phones[0] if phones else None,
        amocrm_contact=str(contact.id),
    )
