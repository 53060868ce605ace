"""What the sandbox's Google project looks like: its service account, spreadsheets and quotas."""

from __future__ import annotations

from dataclasses import dataclass, field

SANDBOX_ACCOUNT = "sandbox@schoolsync-sandbox.iam.gserviceaccount.com"
FEEDBACK_ID = "sandbox-feedback"
REPORTS_ID = "sandbox-reports"
FEEDBACK_TAB = "Ответы на форму (1)"
FEEDBACK_HEADER = [
    "Отметка времени",
    "Адрес электронной почты",
    "ФИО ребенка",
    "Оценка (0–10)",
    "Комментарий",
]


def _default_spreadsheets() -> dict[str, dict[str, list[list[str]]]]:
    return {
        FEEDBACK_ID: {FEEDBACK_TAB: [list(FEEDBACK_HEADER)]},
        REPORTS_ID: {"Лист1": []},
    }


@dataclass
class SheetsSandboxConfig:
    """Settings of one fake Google project.

    The sandbox makes one service account, ``service_account``, with a fresh RSA key pair; its
    key file is at ``GET /_sandbox/key-file``. ``extra_accounts`` maps more service-account
    emails to PEM public keys (their private keys stay with whoever made them). Every spreadsheet
    in ``spreadsheets`` (id -> tab title -> rows) is shared with ``service_account``.
    ``per_minute`` is the read and the write quota per service account; ``token_lifetime_s`` how
    long an access token lives (Google: one hour).
    """

    service_account: str = SANDBOX_ACCOUNT
    project_id: str = "schoolsync-sandbox"
    project_number: str = "100000000001"
    extra_accounts: dict[str, str] = field(default_factory=dict)
    spreadsheets: dict[str, dict[str, list[list[str]]]] = field(
        default_factory=_default_spreadsheets
    )
    per_minute: int = 60
    token_lifetime_s: float = 3600.0
    # write the service account's key file here at start (as if downloaded from the console),
    # with this token_uri; for `schoolsync run`, whose workers read it from the data directory
    key_file_path: str | None = None
    token_uri: str | None = None
