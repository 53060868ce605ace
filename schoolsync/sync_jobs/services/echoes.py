"""Changes we wrote ourselves, remembered for a while, so that the webhook or callback each one
sets off is known for ours and not written back the other way (W4: no ping-pong); and the
newest change seen per lead, so that a webhook older than it is ignored.

Redis holds it (shared by every worker, expiring by itself). Lost memory (Redis flushed) costs
at most one extra round: the next webhook re-reads the lead, finds the two sides agree, and
writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from schoolsync.core.clock import utcnow

# where amoCRM's answer to a write did not say when: a webhook for that stage up to this long
# after our write is taken for ours
ECHO_SLACK_S = 30.0
_SEEN_TTL_S = 7 * 24 * 3600


def _lead_key(school: str, lead_id: str | int) -> str:
    return f"schoolsync:echo:{school}:lead:{lead_id}"


def _order_key(school: str, number: str) -> str:
    return f"schoolsync:echo:{school}:order:{number}"


def _member(stage: int, updated_at: datetime | None) -> str:
    return f"{stage}:{int(updated_at.timestamp()) if updated_at is not None else ''}"


def remember_lead_stages(
    redis: Any,
    school: str,
    stages: Iterable[tuple[str | int, int, datetime | None]],
    ttl_s: int,
) -> None:
    """We just wrote these (lead id, stage id, the lead's ``updated_at`` amoCRM answered)."""
    now = utcnow().timestamp()
    pipe = redis.pipeline(transaction=False)
    count = 0
    for lead_id, stage, updated_at in stages:
        key = _lead_key(school, lead_id)
        pipe.zadd(key, {_member(stage, updated_at): now})
        pipe.expire(key, ttl_s)
        count += 1
    if count:
        pipe.execute()


def is_lead_echo(
    redis: Any,
    school: str,
    lead_id: int,
    stage: int,
    changed_at: datetime | None,
    ttl_s: int,
) -> bool:
    """The lead is in ``stage`` since ``changed_at`` (its ``updated_at``, whole seconds, as the
    webhook or the API says) because we wrote it: the same stage and the same moment amoCRM
    answered our write with. (Without that moment in the answer, a write of that stage within
    the last ``ECHO_SLACK_S``.) A person who moved the lead to the same stage later is not us."""
    key = _lead_key(school, lead_id)
    oldest = utcnow().timestamp() - ttl_s
    if changed_at is not None:
        written = redis.zscore(key, _member(stage, changed_at))
        if written is not None and float(written) >= oldest:
            return True
    written = redis.zscore(key, _member(stage, None))
    return (
        written is not None
        and float(written) >= oldest
        and (changed_at is None or changed_at.timestamp() <= float(written) + ECHO_SLACK_S)
    )


def remember_order_status(redis: Any, school: str, number: str, status: str, ttl_s: int) -> None:
    """We are about to change the platform's order ``number`` to ``status``: one callback with
    that status is ours."""
    key = _order_key(school, number)
    pipe = redis.pipeline(transaction=False)
    pipe.hincrby(key, status, 1)
    pipe.expire(key, ttl_s)
    pipe.execute()


# one expected callback used up, only where one is expected: no key is made, none goes below 0
_TAKE = """
local left = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if left > 0 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
  return 1
end
return 0
"""


def take_order_echoes(
    redis: Any, school: str, pairs: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """The (number, status) pairs that are callbacks of our own writes; each write answers for
    one callback (a person's later change to the same status is not ours)."""
    wanted = list(dict.fromkeys(pairs))
    if not wanted:
        return set()
    take = redis.register_script(_TAKE)
    pipe = redis.pipeline(transaction=False)
    for number, status in wanted:
        take(keys=[_order_key(school, number)], args=[status], client=pipe)
    return {pair for pair, hit in zip(wanted, pipe.execute(), strict=True) if int(hit)}


def newer_lead_change(redis: Any, school: str, lead_id: int, changed_at: datetime | None) -> bool:
    """``False`` when a later change of this lead was seen already (a webhook out of order)."""
    if changed_at is None:
        return True
    key = f"schoolsync:lead-seen:{school}:{lead_id}"
    stamp = changed_at.timestamp()
    seen = redis.get(key)
    if seen is not None and stamp < float(seen):
        return False
    redis.set(key, str(stamp), ex=_SEEN_TTL_S)
    return True
