"""What a generic event asks of us: one recorded effect per event, keyed for idempotency."""

from __future__ import annotations

from dataclasses import dataclass

from schoolsync.connectors.generic.models import GenericEvent


@dataclass(frozen=True)
class RecordEvent:
    """Command: record that the event happened, exactly once."""

    school: str
    effect_key: str
    event_type: str
    event_id: str


def to_command(event: GenericEvent, *, school: str) -> RecordEvent:
    return RecordEvent(
        school=school,
        effect_key=f"generic:event:{school}:{event.id}",
        event_type=event.type,
        event_id=event.id,
    )
