"""Wire formats of the Sheets API v4 and Google's OAuth token endpoint, and what we hand back.

Lenient on input (``extra="ignore"``). proto3 JSON leaves out zero counts and empty strings, so
every count defaults to 0 and every range to ``""``: an append to an empty sheet has no
``tableRange``, a read of empty cells no ``values``. References:
developers.google.com/sheets/api/reference/rest/v4/spreadsheets.values (ValueRange,
UpdateValuesResponse, AppendValuesResponse, BatchUpdateValuesResponse) and
developers.google.com/identity/protocols/oauth2/service-account.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if value is None:
        return ""
    return str(value)


class ValueRange(_Wire):
    range: str = ""
    major_dimension: str = Field("ROWS", alias="majorDimension")
    values: list[list[str]] = Field(default_factory=list)

    @field_validator("values", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        """FORMATTED_VALUE gives strings; anything else is turned into its text."""
        if isinstance(value, list):
            return [[_text(c) for c in row] if isinstance(row, list) else row for row in value]
        return value


class UpdateResult(_Wire):
    """UpdateValuesResponse: what a write changed."""

    spreadsheet_id: str = Field("", alias="spreadsheetId")
    updated_range: str = Field("", alias="updatedRange")
    updated_rows: int = Field(0, alias="updatedRows")
    updated_columns: int = Field(0, alias="updatedColumns")
    updated_cells: int = Field(0, alias="updatedCells")


class AppendValuesResponse(_Wire):
    spreadsheet_id: str = Field("", alias="spreadsheetId")
    table_range: str = Field("", alias="tableRange")
    updates: UpdateResult = Field(default_factory=UpdateResult)


class AppendResult(_Wire):
    """Where appended rows landed: ``updated_range`` like ``'Лист1'!A7:E8``."""

    updated_range: str
    updated_rows: int
    table_range: str = ""  # the table found before the append; "" on an empty sheet


class BatchUpdateResult(_Wire):
    """BatchUpdateValuesResponse."""

    spreadsheet_id: str = Field("", alias="spreadsheetId")
    total_updated_rows: int = Field(0, alias="totalUpdatedRows")
    total_updated_columns: int = Field(0, alias="totalUpdatedColumns")
    total_updated_cells: int = Field(0, alias="totalUpdatedCells")
    total_updated_sheets: int = Field(0, alias="totalUpdatedSheets")
    responses: list[UpdateResult] = Field(default_factory=list)


class GoogleStatus(_Wire):
    code: int = 0
    message: str = ""
    status: str = ""


class GoogleErrorBody(_Wire):
    """``{"error": {"code", "message", "status"}}``."""

    error: GoogleStatus


class TokenResponse(_Wire):
    access_token: str = Field(repr=False)
    expires_in: int = 3599
    token_type: str = "Bearer"  # noqa: S105 - the scheme's name, not a secret


class TokenErrorBody(_Wire):
    """``{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}``."""

    error: str = ""
    error_description: str = ""


class ServiceAccountKey(_Wire):
    """The fields of a service account's JSON key file that we use."""

    type: str
    client_email: str
    private_key: str = Field(repr=False)
    private_key_id: str = ""
    token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
    project_id: str = ""
