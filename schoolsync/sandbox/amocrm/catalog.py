"""Lookups over the account's fixed setup: pipelines, statuses, users, custom fields."""

from __future__ import annotations

from schoolsync.sandbox.amocrm.config import (
    LOST_STATUS_ID,
    UNSORTED_STATUS_TYPE,
    WON_STATUS_ID,
    AmoField,
    AmoPipeline,
    AmoSandboxConfig,
    AmoStatus,
    AmoUser,
)

CLOSED_STATUS_IDS = frozenset({WON_STATUS_ID, LOST_STATUS_ID})


class FieldSet:
    """The custom fields of one entity type, by id and by ``field_code``."""

    def __init__(self, fields: list[AmoField]) -> None:
        self.fields = sorted(fields, key=lambda f: (f.sort, f.id))
        self.by_id = {f.id: f for f in fields}
        self.by_code = {f.code: f for f in fields if f.code}


class Catalog:
    def __init__(self, config: AmoSandboxConfig) -> None:
        if not config.pipelines or not config.users:
            raise ValueError("the sandbox needs at least one pipeline and one user")
        self.pipelines = {p.id: p for p in config.pipelines}
        self.main_pipeline = next((p for p in config.pipelines if p.is_main), config.pipelines[0])
        self.users: dict[int, AmoUser] = {u.id: u for u in config.users}
        self.api_user = config.users[0]
        self.lead_fields = FieldSet(config.lead_fields)
        self.contact_fields = FieldSet(config.contact_fields)

    def status(self, pipeline_id: int, status_id: int) -> AmoStatus | None:
        pipeline = self.pipelines.get(pipeline_id)
        if pipeline is None:
            return None
        return next((s for s in pipeline.statuses if s.id == status_id), None)

    def pipeline_of(self, status_id: int, preferred: int | None = None) -> AmoPipeline | None:
        """The pipeline a bare ``status_id`` belongs to (142/143 exist in every pipeline)."""
        if preferred is not None and self.status(preferred, status_id) is not None:
            return self.pipelines[preferred]
        if status_id in CLOSED_STATUS_IDS:
            return self.main_pipeline
        return next(
            (p for p in self.pipelines.values() if any(s.id == status_id for s in p.statuses)),
            None,
        )

    @staticmethod
    def first_open_status(pipeline: AmoPipeline) -> AmoStatus:
        """Where a lead lands without a status: the first stage after "unsorted"."""
        open_ = [
            s
            for s in pipeline.statuses
            if s.type != UNSORTED_STATUS_TYPE and s.id not in CLOSED_STATUS_IDS
        ]
        return min(open_ or list(pipeline.statuses), key=lambda s: s.sort)
