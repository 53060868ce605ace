"""Robokassa's signatures, written from docs.robokassa.ru.

- Payment page (script-parameters): ``MerchantLogin:OutSum:InvId:Password#1`` (``InvId`` may be
  empty: ``MerchantLogin:OutSum::Password#1``); with a fiscal ``Receipt``
  ``MerchantLogin:OutSum:InvId:Receipt:Password#1``; then ``:Shp_key=value`` pairs.
- ResultURL (notifications-and-redirects): ``OutSum:InvId:Password#2`` then the ``Shp_`` pairs.
- ``Shp_`` pairs are sorted alphabetically by name, regardless of case (the official WordPress
  plugin signs ``shp_label`` before ``Shp_merchant_id``). The hash is hex, in any case.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

ALGORITHMS = ("md5", "sha1", "sha256", "sha384", "sha512", "ripemd160")


def is_shp(name: str) -> bool:
    return name.lower().startswith("shp_") and len(name) > 4


def tail(pairs: Iterable[tuple[str, str]]) -> str:
    ordered = sorted(pairs, key=lambda pair: pair[0].lower())
    return "".join(f":{name}={value}" for name, value in ordered)


def hexdigest(algorithm: str, text: str) -> str:
    return hashlib.new(algorithm, text.encode("utf-8")).hexdigest()


def page_signature(
    algorithm: str,
    login: str,
    out_sum: str,
    inv_id: str,
    password1: str,
    shp: Iterable[tuple[str, str]],
    receipt: str | None = None,
) -> str:
    middle = f"{inv_id}:{receipt}" if receipt is not None else inv_id
    return hexdigest(algorithm, f"{login}:{out_sum}:{middle}:{password1}{tail(shp)}")


def result_signature(
    algorithm: str, out_sum: str, inv_id: str, password2: str, shp: Iterable[tuple[str, str]]
) -> str:
    return hexdigest(algorithm, f"{out_sum}:{inv_id}:{password2}{tail(shp)}")


def matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.lower().encode(), given.strip().lower().encode())
