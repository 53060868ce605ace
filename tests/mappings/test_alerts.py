"""Failure alerts, the pure part: what makes a class, the ``rules.alerts`` block, and when a
class is new or spiking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schoolsync.core.config import ConfigFileError, parse_config
from schoolsync.mappings.alerts import (
    MAX_NEW_VARIANTS_PER_DAY,
    AlertRules,
    FailureClass,
    Posted,
    SeenFailure,
    alert_key,
    alerts_due,
    classify,
    group,
    masked,
    normalise,
    posted_from,
    where_to_look,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PUSH = "push_orders"


def test_a_distinct_unknown_product_is_a_class_of_its_own_but_the_order_number_is_not() -> None:
    a1 = classify(PUSH, "ConfigError", "order 1001: product 'Пакет VIP' is unknown")
    a2 = classify(PUSH, "ConfigError", "order 2002: product 'Пакет VIP' is unknown")
    b = classify(PUSH, "ConfigError", "order 1001: product 'Пакет Эконом' is unknown")

    assert a1 == a2
    assert a1.message == "order <n>: product 'Пакет VIP' is unknown"
    assert a1 != b
    assert a1.family == b.family  # the same kind of cause: counted together against a flood
    assert a1.id != b.id


@pytest.mark.parametrize(
    ("message", "normalised"),
    [
        ("manager 'anna@school.ru' has no amoCRM user", "manager '<email>' has no amoCRM user"),
        ("contact ivan.petrov@mail.ru exists twice", "contact <email> exists twice"),
        ("no lead for +7 999 123-45-67", "no lead for <phone>"),
        ("no outbox message '12345'", "no outbox message '<n>'"),
        (
            "request 3f2b8c1e-9a0d-4c6e-8b7a-1d2e3f4a5b6c failed after 2.5 s",
            "request <id> failed after <n> s",
        ),
        ("lead gc-order-98765abc not found", "lead <id> not found"),
        ("product «Курс 2024» is unknown", "product «Курс 2024» is unknown"),
        ('can\'t map status "paid"', 'can\'t map status "paid"'),
        ("  two\n lines  ", "two lines"),
    ],
)
def test_normalise_replaces_what_names_the_case_and_keeps_what_names_the_cause(
    message: str, normalised: str
) -> None:
    assert normalise(message) == normalised


def test_a_long_message_makes_a_class_of_bounded_size() -> None:
    assert len(normalise("x" * 1000)) == 200


def test_the_example_is_masked_and_short() -> None:
    text = masked("order 7: buyer ivan.petrov@mail.ru, token=abc123secret " + "y" * 500)
    assert "ivan.petrov" not in text and "abc123secret" not in text
    assert "i***@mail.ru" in text
    assert len(text) == 300 and text.endswith("…")


def test_rules_defaults_and_validation() -> None:
    rules = AlertRules()
    assert (rules.enabled, rules.channel, rules.spike_count) == (True, "admin", 20)
    assert (rules.spike_window_min, rules.spike_quiet_min, rules.base_url) == (10, 60, None)
    assert AlertRules(base_url="https://sync.school.ru/").base_url == "https://sync.school.ru"
    for bad in ({"base_url": "sync.school.ru"}, {"spike_count": 1}, {"spike_windw_min": 5}):
        with pytest.raises(ValidationError):
            AlertRules.model_validate(bad)


def test_check_config_names_an_unconfigured_channel_and_a_bad_key() -> None:
    text = "channels: {sales: -100}\nrules:\n  alerts: {spike_count: 0}\n"
    with pytest.raises(ConfigFileError) as caught:
        parse_config(text, blocks={"rules.alerts": AlertRules})
    assert "rules.alerts.spike_count" in str(caught.value)
    with pytest.raises(ConfigFileError) as caught:
        parse_config("rules: {alerts: {enabled: true}}\n", blocks={"rules.alerts": AlertRules})
    assert "channel 'admin' is not configured" in str(caught.value)
    parse_config(
        "channels: {admin: -100}\nrules: {alerts: {base_url: 'https://a.ru'}}\n",
        blocks={"rules.alerts": AlertRules},
    )


def test_the_link_goes_to_the_filtered_list_or_else_the_cli() -> None:
    cls = FailureClass(PUSH, "ConfigError", "x")
    url, command = where_to_look(AlertRules(base_url="https://sync.school.ru"), cls)
    assert url == "https://sync.school.ru/admin/failures?actor=push_orders&class=ConfigError"
    assert command == "schoolsync failures list --actor push_orders --class ConfigError"
    assert where_to_look(AlertRules(), cls)[0] is None


def test_keys_name_the_class_and_the_spike_window_and_read_back() -> None:
    cls = classify(PUSH, "ConfigError", "product 'A' is unknown")
    first = alert_key("first", "default", cls, NOW)
    spike = alert_key("spike", "default", cls, NOW)
    assert first == f"alert:first:default:{cls.id}"
    assert spike == f"alert:spike:default:{cls.id}:20261124T1200Z"
    assert posted_from(spike, NOW) == Posted("spike", cls.id, NOW)
    assert posted_from("sla-remind:12", NOW) is None


def failing(message: str, count: int, at: datetime) -> list[SeenFailure]:
    return [SeenFailure(PUSH, "ConfigError", message, at, at) for _ in range(count)]


def test_new_then_spike_then_quiet() -> None:
    rules = AlertRules()
    groups = group(failing("product 'A' is unknown", 1, NOW))
    (first,) = alerts_due(groups, posted=[], seen_before=set(), now=NOW, rules=rules)
    assert (first.new, first.spike, first.count, first.kind) == (True, False, 1, "first")
    posted = [Posted("first", first.cls.id, NOW)]
    assert alerts_due(groups, posted=posted, seen_before=set(), now=NOW, rules=rules) == []

    later = NOW + timedelta(minutes=5)
    groups = group(
        failing("product 'A' is unknown", 1, NOW) + failing("product 'A' is unknown", 25, later)
    )
    (spike,) = alerts_due(groups, posted=posted, seen_before=set(), now=later, rules=rules)
    assert (spike.new, spike.spike, spike.count, spike.kind) == (False, True, 26, "spike")
    posted.append(Posted("spike", spike.cls.id, later))
    # still spiking 30 minutes later: quiet; 61 minutes after the spike, a new one
    more = failing("product 'A' is unknown", 30, later + timedelta(minutes=30))
    quiet = later + timedelta(minutes=35)
    assert alerts_due(group(more), posted=posted, seen_before=set(), now=quiet, rules=rules) == []
    again = later + timedelta(minutes=61)
    more = failing("product 'A' is unknown", 30, again - timedelta(minutes=2))
    (next_spike,) = alerts_due(
        group(more), posted=posted, seen_before=set(), now=again, rules=rules
    )
    assert next_spike.spike and next_spike.count == 30


def test_a_class_that_is_new_and_spiking_at_once_is_one_message_keyed_as_the_spike() -> None:
    groups = group(failing("product 'A' is unknown", 40, NOW))
    (alert,) = alerts_due(groups, posted=[], seen_before=set(), now=NOW, rules=AlertRules())
    assert (alert.new, alert.spike, alert.kind, alert.count) == (True, True, "spike", 40)


def test_a_class_seen_before_the_look_back_is_not_new() -> None:
    groups = group(failing("product 'A' is unknown", 3, NOW))
    (cls,) = groups
    assert alerts_due(groups, posted=[], seen_before={cls.id}, now=NOW, rules=AlertRules()) == []


def test_variants_of_one_family_are_capped_a_day() -> None:
    names = [f"no contact for 'Person {chr(65 + i)}'" for i in range(MAX_NEW_VARIANTS_PER_DAY + 5)]
    groups = group(f for name in names for f in failing(name, 1, NOW))
    due = alerts_due(groups, posted=[], seen_before=set(), now=NOW, rules=AlertRules())
    assert len(due) == MAX_NEW_VARIANTS_PER_DAY
