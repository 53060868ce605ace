"""What the sandbox shop looks like: its login, passwords, hash and where it sends ResultURL."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RobokassaSandboxConfig:
    """Settings of one fake Robokassa shop.

    The passwords are the sandbox's own, public values (they open nothing real). ``hash`` is the
    algorithm of the shop's technical settings. ResultURL is called ``result_retries + 1`` times
    at most, until it answers ``OK{InvId}``; ``fee_percent`` is the commission reported as
    ``Fee``.
    """

    merchant_login: str = "schoolsync-sandbox"
    password1: str = "sandbox-password-1"
    password2: str = "sandbox-password-2"
    test_password1: str | None = "sandbox-test-password-1"
    test_password2: str | None = "sandbox-test-password-2"
    hash: str = "md5"
    result_url: str | None = None
    result_method: str = "POST"  # or GET, as in the technical settings
    result_timeout_s: float = 5.0
    result_retries: int = 3
    result_retry_delay_s: float = 0.05
    fee_percent: str = "3.9"
