"""amoCRM account webhooks: the recorded status-change body, secrets, account checks, dedup."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import pytest

from schoolsync.connectors.amocrm.webhooks import (
    AmoCrmWebhook,
    EntityEvent,
    LeadEvent,
    WebhookRoute,
    parse,
    parse_form,
)
from schoolsync.connectors.inbound import RawRequest, WebhookSource
from schoolsync.core.errors import MalformedInputError, VerificationError

SAMPLE = Path(__file__).parents[2] / "fixtures" / "amocrm" / "lead_status_webhook.txt"
SECRET = "k3J9-webhook-secret-for-tests"


def sample_pairs() -> list[tuple[str, str]]:
    """The recorded body as (key, value) pairs.

    The file is stored partly decoded: brackets and Cyrillic raw, ``+`` for spaces, and one URL
    value whose own query is percent-encoded (``%2B`` is part of that value). So: split on
    ``&`` and the first ``=``, turn ``+`` into spaces, and unquote nothing else.
    """
    text = SAMPLE.read_text(encoding="utf-8").strip()
    pairs = []
    for part in text.split("&"):
        key, _, value = part.partition("=")
        pairs.append((key.replace("+", " "), value.replace("+", " ")))
    return pairs


def encode(pairs: list[tuple[str, str]]) -> bytes:
    """What amoCRM puts on the wire: application/x-www-form-urlencoded."""
    return urlencode(pairs).encode()


def with_value(pairs: list[tuple[str, str]], key: str, value: str) -> list[tuple[str, str]]:
    return [(k, value if k == key else v) for k, v in pairs]


@pytest.fixture
def source() -> AmoCrmWebhook:
    return AmoCrmWebhook(
        {
            SECRET: WebhookRoute(school="fitness", account="main", subdomain="apfitness"),
            "another-secret-of-another-school": WebhookRoute(school="other", account="crm"),
        }
    )


def request(body: bytes, query: str = f"secret={SECRET}") -> RawRequest:
    return RawRequest(
        body=body, headers={"content-type": "application/x-www-form-urlencoded"}, query=query
    )


def test_the_recorded_status_change_becomes_a_typed_lead_event() -> None:
    webhook = parse(encode(sample_pairs()))

    assert webhook.account.subdomain == "apfitness"
    (event,) = webhook.events
    assert isinstance(event, LeadEvent)
    assert (event.action, event.id, event.status_id, event.old_status_id) == (
        "status",
        10701093,
        142,
        20067736,
    )
    assert (event.pipeline_id, event.price, event.responsible_user_id) == (9217056, 22500, 2079676)
    assert event.last_modified == datetime.fromtimestamp(1539782664, UTC)
    assert event.date_create == datetime.fromtimestamp(1539782209, UTC)
    assert event.name == "Семинар: Пропитание в фитнесе на результат"
    assert event.tags == ["повторное обращение"]
    fields = {f.id: f for f in event.custom_fields}
    assert len(fields) == 8
    assert (fields[66339].values[0].value, fields[66339].values[0].enum) == ("Сайт", 139517)
    assert fields[72333].values[0].value == "1542067200"  # a date field: values[0]=<ts>
    assert fields[566891].values[0].value == (
        "https://forms.amocrm.ru/tvzdtx?dp=Q1zaSQHqO%2BhHArUG1UMtpby%2FFHdWZSZgNIHZ%2BvJ%2FRAgB60%2FhsT%2F4Zwi%2F4qY37M3f"
    )


def test_php_keys_become_lists_only_where_keys_count_from_zero() -> None:
    form = parse_form(b"a[0][x]=1&a[1][x]=2&b[5]=y&c[]=p&c[]=q&d=plain")

    assert form == {"a": [{"x": "1"}, {"x": "2"}], "b": {"5": "y"}, "c": ["p", "q"], "d": "plain"}


def test_other_entities_become_entity_events() -> None:
    webhook = parse(
        b"contacts[update][0][id]=7&contacts[update][0][last_modified]=1700000000"
        b"&leads[add][0][id]=5&leads[add][0][status_id]=1&account[subdomain]=x&account[id]=9"
    )

    kinds = {(e.entity, e.action, e.id) for e in webhook.events}
    assert kinds == {("contacts", "update", 7), ("leads", "add", 5)}
    assert any(isinstance(e, EntityEvent) for e in webhook.events)
    assert webhook.account.id == 9


def test_accepted_with_the_right_secret_for_its_school(source: AmoCrmWebhook) -> None:
    accepted = source.accept(request(encode(sample_pairs())))

    assert accepted.school == "fitness"
    assert accepted.dedup_key.startswith("amocrm:")
    checked: WebhookSource = source  # satisfies the protocol the web role uses
    assert checked.name == "amocrm"


def test_redeliveries_of_one_change_share_a_dedup_key(source: AmoCrmWebhook) -> None:
    pairs = sample_pairs()
    first = source.accept(request(encode(pairs))).dedup_key

    reordered = source.accept(request(encode(list(reversed(pairs))))).dedup_key
    as_update = encode([(k.replace("[status]", "[update]"), v) for k, v in pairs])
    also_update_hook = source.accept(request(as_update)).dedup_key
    later = source.accept(
        request(encode(with_value(pairs, "leads[status][0][last_modified]", "1539782999")))
    ).dedup_key
    moved_on = source.accept(
        request(encode(with_value(pairs, "leads[status][0][status_id]", "143")))
    ).dedup_key

    assert first == reordered == also_update_hook
    assert len({first, later, moved_on}) == 3


@pytest.mark.parametrize(
    "query",
    ["", "secret=", "secret=wrong-secret", f"secret={SECRET}x", f"secret={SECRET}&secret=x"],
)
def test_a_missing_or_wrong_secret_is_refused(source: AmoCrmWebhook, query: str) -> None:
    with pytest.raises(VerificationError) as caught:
        source.accept(request(encode(sample_pairs()), query=query))

    assert "wrong-secret" not in str(caught.value) and SECRET not in str(caught.value)


def test_a_body_from_another_account_is_refused(source: AmoCrmWebhook) -> None:
    pairs = with_value(sample_pairs(), "account[subdomain]", "someoneelse")

    with pytest.raises(VerificationError, match="not from the amoCRM account 'main'"):
        source.accept(request(encode(pairs)))

    without_account = [(k, v) for k, v in sample_pairs() if not k.startswith("account")]
    with pytest.raises(VerificationError):
        source.accept(request(encode(without_account)))


def test_the_secret_is_checked_before_the_body_is_read(source: AmoCrmWebhook) -> None:
    with pytest.raises(VerificationError):
        source.accept(request(b"\xff\xfe not even text", query="secret=nope"))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "empty"),
        (b"\xff\xfe", "not UTF-8"),
        (b"no-equals-sign", "not form-urlencoded"),
        (b"leads[status][0]=x&leads[status][0][id]=1", "both a value and a group"),
        (b"account[subdomain]=apfitness", "no lead, contact"),
        (b"leads=flat&account[subdomain]=apfitness", "not a group of actions"),
        (
            b"leads[status]=flat&account[subdomain]=apfitness",
            r"leads\[status\]\[0\] is not a group",
        ),
    ],
)
def test_malformed_bodies_name_the_problem(
    source: AmoCrmWebhook, body: bytes, problem: str
) -> None:
    with pytest.raises(MalformedInputError, match=problem):
        source.accept(request(body))


def test_a_field_we_cannot_read_is_named_without_its_value(source: AmoCrmWebhook) -> None:
    pairs = with_value(sample_pairs(), "leads[status][0][price]", "79991234567 руб")

    with pytest.raises(MalformedInputError) as caught:
        source.accept(request(encode(pairs)))

    assert "leads[status][0][price]" in str(caught.value)
    assert "79991234567" not in str(caught.value)


def test_an_empty_secret_cannot_be_configured() -> None:
    with pytest.raises(ValueError):
        AmoCrmWebhook({"": WebhookRoute(school="s", account="a")})


def test_a_secret_may_stand_for_just_a_school() -> None:
    source = AmoCrmWebhook({SECRET: "fitness"})

    accepted = source.accept(request(encode(sample_pairs())))

    assert accepted.school == "fitness"
    with pytest.raises(VerificationError):
        source.accept(request(encode(sample_pairs()), query="secret=other"))
