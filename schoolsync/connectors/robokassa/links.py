"""Payment links to Robokassa's payment page, signed with Password #1.

``GET {base_url}?MerchantLogin&OutSum&InvId&Description&SignatureValue[&Email][&IsTest=1]
[&Culture][&Shp_*]`` (docs.robokassa.ru/script-parameters). ``Description`` is at most 100
characters; ``OutSum`` is written with two decimals and a dot; ``InvId`` is a positive whole
number below 2^31. A test link (``IsTest=1``) is signed with the test Password #1.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from urllib.parse import urlencode

from schoolsync.connectors.robokassa.config import RobokassaAccount
from schoolsync.connectors.robokassa.signature import check_hash, digest, link_base, shp_key

MAX_DESCRIPTION = 100
MAX_INV_ID = 2**31 - 1
_CENT = Decimal("0.01")


def format_out_sum(out_sum: Decimal) -> str:
    """``OutSum`` as a link carries it: ``5.12``, ``2500.00``.

    Raises:
        ValueError: not positive, or with fractions of a kopeck.
    """
    if not out_sum.is_finite() or out_sum <= 0:
        raise ValueError("OutSum must be a positive amount")
    if out_sum != out_sum.quantize(_CENT):
        raise ValueError("OutSum cannot have fractions of a kopeck")
    return f"{out_sum.quantize(_CENT):f}"


class RobokassaLinks:
    """Payment links for one shop; the passwords come from the app's secrets."""

    def __init__(
        self, account: RobokassaAccount, password1: str, test_password1: str | None = None
    ) -> None:
        if not password1:
            raise ValueError("Robokassa Password #1 is required")
        check_hash(account.hash)
        self.account = account
        self._password1 = password1
        self._test_password1 = test_password1

    def __repr__(self) -> str:
        return f"RobokassaLinks(shop={self.account.merchant_login!r})"

    def signature(
        self, out_sum: str, inv_id: str, shp: Mapping[str, str], *, is_test: bool = False
    ) -> str:
        """Lower-case hex ``HASH(MerchantLogin:OutSum:InvId:Password#1[:Shp_...])``."""
        password = self._test_password1 if is_test else self._password1
        if not password:
            raise ValueError("a test link needs the shop's test passwords (test_password1_env)")
        pairs = [(shp_key(name), value) for name, value in shp.items()]
        base = link_base(self.account.merchant_login, out_sum, inv_id, password, pairs)
        return digest(self.account.hash, base)

    def payment_link(
        self,
        out_sum: Decimal,
        inv_id: int,
        description: str,
        *,
        shp: Mapping[str, str] | None = None,
        email: str | None = None,
        is_test: bool = False,
        culture: str | None = None,
    ) -> str:
        """The payment page URL for invoice ``inv_id``.

        ``shp`` are the shop's own parameters (``{"order": "12345"}`` becomes ``Shp_order``),
        echoed back in ResultURL and signed. With several schools on one deployment pass
        ``{"school": <school id>}`` so that the notification names its school.

        Raises:
            ValueError: an amount, invoice number or description Robokassa would refuse, or a
                test link for a shop without test passwords.
        """
        amount = format_out_sum(out_sum)
        if not 0 < inv_id <= MAX_INV_ID:
            raise ValueError(f"InvId must be between 1 and {MAX_INV_ID}")
        if not description.strip() or len(description) > MAX_DESCRIPTION:
            raise ValueError(f"Description must be 1-{MAX_DESCRIPTION} characters")
        extra = dict(shp or {})
        params: list[tuple[str, str]] = [
            ("MerchantLogin", self.account.merchant_login),
            ("OutSum", amount),
            ("InvId", str(inv_id)),
            ("Description", description),
            ("SignatureValue", self.signature(amount, str(inv_id), extra, is_test=is_test)),
        ]
        if email:
            params.append(("Email", email))
        if culture:
            params.append(("Culture", culture))
        if is_test:
            params.append(("IsTest", "1"))
        params.extend((shp_key(name), value) for name, value in sorted(extra.items()))
        return f"{self.account.base_url}?{urlencode(params)}"
