"""Actor names, in one place so that services can ask for jobs without importing the actors."""

from __future__ import annotations

PROCESS_INBOX_EVENT = "process_inbox_event"
PROCESS_INBOX_BATCH = "process_inbox_batch"
