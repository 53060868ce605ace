"""Robokassa signatures: the ResultURL check (Password #2) and payment links (Password #1).

From docs.robokassa.ru (notifications-and-redirects, script-parameters, code-examples) and the
official plugins (github.com/robokassa/cms-wordpress ``wp_robokassa.php``, sdk-php)::

    ResultURL     SignatureValue = HASH("OutSum:InvId:Password#2[:Shp_a=1:Shp_b=2]")
    payment link  SignatureValue = HASH("MerchantLogin:OutSum:InvId:Password#1[:Shp_a=1:Shp_b=2]")

- ``HASH`` is the algorithm chosen in the shop's technical settings: MD5 by default; the
  official plugin also offers RIPEMD-160, SHA-1, SHA-256, SHA-384 and SHA-512. Any other name is
  refused (``ConfigError``). The hex digest comes in any case; it is compared lower-cased, in
  constant time (``hmac.compare_digest``).
- ``Shp_`` pairs (the shop's own parameters, echoed back in ResultURL) are appended as
  ``Shp_key=value``, sorted by key **case-insensitively** (the WordPress plugin signs
  ``shp_label=...`` before ``Shp_merchant_id=...``). Their names keep the spelling they arrived
  with; values are the decoded values.
- ``OutSum`` is signed exactly as received (Robokassa sends ``100.000000`` for a link made with
  ``100.00``): never re-formatted before checking.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

from schoolsync.core.errors import ConfigError

PLATFORM = "robokassa"
HASHES = ("md5", "sha1", "sha256", "sha384", "sha512", "ripemd160")
SHP_PREFIX = "shp_"


def check_hash(name: str) -> str:
    """``name`` lower-cased if it is one of Robokassa's algorithms and this Python has it.

    Raises:
        ConfigError: any other name, or RIPEMD-160 on an OpenSSL built without it.
    """
    wanted = name.strip().lower()
    if wanted not in HASHES:
        raise ConfigError(
            f"robokassa hash {name!r} is not one of {', '.join(HASHES)}", platform=PLATFORM
        )
    try:
        hashlib.new(wanted)
    except ValueError:
        raise ConfigError(
            f"robokassa hash {wanted} is not available in this Python's OpenSSL "
            "(RIPEMD-160 needs OpenSSL's legacy provider); choose another in the shop's "
            "technical settings",
            platform=PLATFORM,
        ) from None
    return wanted


def digest(hash_name: str, text: str) -> str:
    """Lower-case hex ``HASH(text)`` of the UTF-8 bytes of ``text``."""
    return hashlib.new(check_hash(hash_name), text.encode("utf-8")).hexdigest()


def is_shp(key: str) -> bool:
    return key.lower().startswith(SHP_PREFIX) and len(key) > len(SHP_PREFIX)


def shp_key(name: str) -> str:
    """The parameter name for a shop parameter: ``order`` -> ``Shp_order`` (kept if prefixed)."""
    return name if is_shp(name) else f"Shp_{name}"


def shp_tail(pairs: Iterable[tuple[str, str]]) -> str:
    """``:Shp_a=1:Shp_b=2`` for ``Shp_`` parameters (full names), sorted case-insensitively."""
    ordered = sorted(pairs, key=lambda pair: (pair[0].casefold(), pair[0]))
    return "".join(f":{key}={value}" for key, value in ordered)


def result_base(out_sum: str, inv_id: str, password2: str, shp: Iterable[tuple[str, str]]) -> str:
    """The string ResultURL's ``SignatureValue`` is the hash of."""
    return f"{out_sum}:{inv_id}:{password2}{shp_tail(shp)}"


def link_base(
    merchant_login: str,
    out_sum: str,
    inv_id: str,
    password1: str,
    shp: Iterable[tuple[str, str]],
) -> str:
    """The string a payment link's ``SignatureValue`` is the hash of (``InvId`` may be empty)."""
    return f"{merchant_login}:{out_sum}:{inv_id}:{password1}{shp_tail(shp)}"


def same_signature(expected_hex: str, given: str) -> bool:
    """Constant-time, case-insensitive comparison of two hex digests."""
    return hmac.compare_digest(
        expected_hex.lower().encode("utf-8"), given.strip().lower().encode("utf-8")
    )


def shp_pairs(params: Mapping[str, str]) -> list[tuple[str, str]]:
    """The ``Shp_`` parameters among ``params`` with their names as received."""
    return [(key, value) for key, value in params.items() if is_shp(key)]
