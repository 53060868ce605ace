"""Who is calling the admin API: named bearer tokens with a role, and what each role may see.

Tokens come from the settings: ``SCHOOLSYNC_ADMIN_TOKENS__<NAME>__TOKEN`` / ``__ROLE``
(``viewer`` or ``operator``), and the older single ``SCHOOLSYNC_ADMIN_TOKEN``, an operator
named ``admin``. A request's token is compared with every configured token in constant time
(``hmac.compare_digest``, no early exit), so timing tells nothing about which one nearly matched.

- no token configured: the admin API is off (404);
- no token or a wrong one: 401;
- a viewer asking for an action: 403.

A viewer sees personal data masked (emails, phones, card numbers: ``core.pii.mask_text``);
nobody sees a secret (credentials in query strings and headers are masked for every role).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import HTTPException, status

from schoolsync.core.pii import AUTH, SECRET_PARAM, mask_text
from schoolsync.core.settings import Settings

Role = Literal["viewer", "operator"]
VIEWER: Role = "viewer"
OPERATOR: Role = "operator"
_SECRET_HEADER = re.compile(r"(?i)authorization|signature|secret|token|api[-_]?key|cookie")


@dataclass(frozen=True)
class Principal:
    """The caller: the token's name (what the audit trail records) and its role."""

    name: str
    role: Role

    @property
    def who(self) -> str:
        return f"api:{self.name}"

    @property
    def can_act(self) -> bool:
        return self.role == OPERATOR

    def mask(self, text: str | None) -> str:
        """``text`` as this caller may see it."""
        if not text:
            return text or ""
        return mask_text(text) if self.role == VIEWER else mask_secrets(text)

    def mask_json(self, value: Any) -> Any:
        """Every string inside ``value`` (dicts, lists) as this caller may see it."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {str(k): self.mask_json(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask_json(v) for v in value]
        return value

    def mask_headers(self, headers: dict[str, str]) -> dict[str, str]:
        return {
            name: "***" if _SECRET_HEADER.search(name) else self.mask(str(value))
            for name, value in headers.items()
        }


def mask_secrets(text: str) -> str:
    """Credentials removed (``Bearer …``, ``secret=…``, ``token=…``), personal data kept."""
    text = AUTH.sub(lambda m: f"{m.group(1)} ***", text)
    return SECRET_PARAM.sub(lambda m: f"{m.group(1)}=***", text)


def configured_tokens(settings: Settings) -> list[tuple[str, Role, bytes]]:
    """(name, role, token) for every admin token in the settings."""
    found: list[tuple[str, Role, bytes]] = []
    if settings.admin_token is not None:
        found.append(("admin", OPERATOR, settings.admin_token.get_secret_value().encode()))
    for name, entry in sorted(settings.admin_tokens.items()):
        found.append((name, entry.role, entry.token.get_secret_value().encode()))
    return found


def authenticator(settings: Settings) -> Callable[[str | None], Principal]:
    """A function from an ``Authorization`` header to the caller; raises ``HTTPException``."""
    tokens = configured_tokens(settings)

    def authenticate(authorization: str | None) -> Principal:
        if not tokens:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "the admin API is off")
        scheme, _, given = (authorization or "").partition(" ")
        presented = given.strip().encode()
        matched: tuple[str, Role] | None = None
        for name, role, expected in tokens:  # every one, whatever matched before
            if hmac.compare_digest(presented, expected) and matched is None:
                matched = (name, role)
        if scheme.lower() != "bearer" or matched is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a valid admin token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Principal(*matched)

    return authenticate


def require_operator(principal: Principal) -> Principal:
    if not principal.can_act:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"token '{principal.name}' may look, not act (viewer)"
        )
    return principal
