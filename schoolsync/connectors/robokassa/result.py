"""Checking a ResultURL notification: fields, signature, then the typed result.

ResultURL fields (docs.robokassa.ru/ru/notifications-and-redirects): ``OutSum``, ``InvId``,
``SignatureValue`` (required here), ``Fee``, ``EMail``, ``PaymentMethod``, ``IncCurrLabel``,
``IncSum``, ``IsTest`` (``1`` for a test-mode payment), and the shop's ``Shp_*`` parameters.
Parameter names are matched case-insensitively, as Robokassa treats them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from schoolsync.connectors.robokassa.models import RobokassaResult
from schoolsync.connectors.robokassa.signature import (
    PLATFORM,
    SHP_PREFIX,
    check_hash,
    digest,
    result_base,
    same_signature,
    shp_pairs,
)
from schoolsync.core.errors import MalformedInputError, VerificationError

REQUIRED = ("OutSum", "InvId", "SignatureValue")
_AMOUNT = re.compile(r"^[0-9]{1,15}(?:\.[0-9]{1,8})?$")
_INV_ID = re.compile(r"^[0-9]{1,18}$")


def folded(params: Mapping[str, str]) -> dict[str, str]:
    """``params`` by lower-cased name.

    Raises:
        MalformedInputError: one name given twice in different case.
    """
    seen: dict[str, str] = {}
    for key, value in params.items():
        lowered = key.lower()
        if lowered in seen:
            raise MalformedInputError(
                f"robokassa parameter {key} is given twice", platform=PLATFORM
            )
        seen[lowered] = value
    return seen


def _amount(name: str, value: str | None, *, required: bool = False) -> Decimal | None:
    if value is None or (not value.strip() and not required):
        return None
    text = value.strip()
    if not _AMOUNT.match(text):
        raise MalformedInputError(
            f"robokassa {name} is not an amount like 100.00", platform=PLATFORM
        )
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise MalformedInputError(f"robokassa {name} is not a number", platform=PLATFORM) from None


def verify_result(
    params: Mapping[str, str],
    password2: str,
    test_password2: str | None,
    hash: str,  # the setting's name in Robokassa's technical settings
) -> RobokassaResult:
    """The notification in ``params`` (decoded form or query fields), once its signature checks.

    ``IsTest=1`` is checked against ``test_password2`` (the test pair), anything else against
    ``password2``. The signature is checked before anything is parsed.

    Raises:
        MalformedInputError: ``OutSum``, ``InvId`` or ``SignatureValue`` missing (all missing
            ones are named), a name given twice, an amount or ``InvId`` that is not a number.
        VerificationError: the signature does not match, or a test payment arrives for a shop
            without test passwords.
        ConfigError: ``hash`` is not one of Robokassa's algorithms.
    """
    algorithm = check_hash(hash)
    fields = folded(params)
    missing = [name for name in REQUIRED if not fields.get(name.lower(), "").strip()]
    if missing:
        raise MalformedInputError(
            f"robokassa notification lacks {', '.join(missing)}", platform=PLATFORM
        )
    out_sum_raw = fields["outsum"]
    inv_id_raw = fields["invid"]
    is_test = fields.get("istest", "").strip() == "1"
    password = test_password2 if is_test else password2
    if not password:
        raise VerificationError(
            "robokassa test payment (IsTest=1) for a shop without test passwords"
            if is_test
            else "robokassa Password #2 is empty",
            platform=PLATFORM,
        )
    base = result_base(out_sum_raw, inv_id_raw, password, shp_pairs(params))
    if not same_signature(digest(algorithm, base), fields["signaturevalue"]):
        raise VerificationError(
            f"robokassa SignatureValue does not match ({algorithm}"
            f"{', test passwords' if is_test else ''})",
            platform=PLATFORM,
        )
    if not _INV_ID.match(inv_id_raw.strip()):
        raise MalformedInputError("robokassa InvId is not a whole number", platform=PLATFORM)
    out_sum = _amount("OutSum", out_sum_raw, required=True)
    assert out_sum is not None  # required amounts are never None
    return RobokassaResult(
        out_sum=out_sum,
        out_sum_raw=out_sum_raw,
        inv_id=int(inv_id_raw.strip()),
        is_test=is_test,
        shp={key[len(SHP_PREFIX) :]: value for key, value in shp_pairs(params)},
        email=fields.get("email") or None,
        fee=_amount("Fee", fields.get("fee")),
        inc_sum=_amount("IncSum", fields.get("incsum")),
        payment_method=fields.get("paymentmethod") or None,
        inc_curr_label=fields.get("inccurrlabel") or None,
    )
