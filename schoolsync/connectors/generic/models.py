"""Wire format of a generic event: ``{"id": "...", "type": "...", "school": "...", "data": {...}}``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class GenericEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, max_length=150)
    type: str = Field(min_length=1, max_length=80)
    school: str | None = None
    data: dict[str, Any] = {}

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value
