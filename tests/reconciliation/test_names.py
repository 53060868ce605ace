from __future__ import annotations

import iuliia
import pytest

from schoolsync.reconciliation.names import (
    given_names,
    index_keys,
    parse_name,
    similarity,
    skeleton,
)


def sim(a: str, b: str) -> float:
    left, right = parse_name(a), parse_name(b)
    assert left is not None and right is not None
    return similarity(left, right)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Демин Саша", "Demin Sasha"),
        ("Демин Саша", "Александр Демин"),
        ("Demin Sasha", "Александр Демин"),
        ("DEMIN ALEKSANDR", "Демин Александр"),
        ("Alexander Demin", "Демин Александр"),
        ("Демина Катя", "Екатерина Демина"),
        ("Катя Демина", "Demina Ekaterina"),
        ("Иванова Юлия Сергеевна", "Iuliia Ivanova"),  # patronymic dropped, ICAO spelling
        ("Yulia Ivanova", "Юлия Иванова"),
        ("Щербаков Женя", "Yevgeny Shcherbakov"),
        ("Соловьёв Пётр", "Pyotr Solovyov"),
        ("Natal'ya Mel’nikova", "Наталья Мельникова"),  # apostrophes of the soft sign
        ("Высоцкая Анна", "Anna Vysotskaya"),
        ("2500 от Деминой Саши", "Александра Демина"),  # genitive, as managers write
    ],
)
def test_the_same_person_in_any_spelling(a: str, b: str) -> None:
    assert sim(a, b) >= 0.95


@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [
        ("Демин А.", "Александр Демин", 0.85, 0.95),  # an initial confirms, less than a name
        ("Дмеин Александр", "Александр Демин", 0.8, 0.9),  # two letters swapped
        ("Демин Алексанр", "Александр Демин", 0.85, 0.95),  # a letter missing in the name
        ("Демин Саша", "Александра Демина", 0.9, 0.97),  # Саша fits her, the form does not
        ("Демин", "Александр Демин", 0.7, 0.8),  # a surname alone: not enough to match
    ],
)
def test_partial_evidence_scores_in_between(a: str, b: str, low: float, high: float) -> None:
    assert low <= sim(a, b) <= high


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Демина Ольга", "Демин Саша"),  # the mother paying: another given name
        ("Петров Саша", "Александр Демин"),
        ("Демин Саша", "Александр Доронин"),
        ("Иван", "Иван Петров"),  # a given name alone is no evidence
    ],
)
def test_other_people_stay_below_the_threshold(a: str, b: str) -> None:
    assert sim(a, b) < 0.8


@pytest.mark.parametrize(
    "scheme",
    ["WIKIPEDIA", "ICAO_DOC_9303", "MOSMETRO", "GOST_52535", "BGN_PCGN", "YANDEX_MONEY", "MVD_782"],
)
@pytest.mark.parametrize(
    "word",
    ["Щербаков", "Юлия", "Евгений", "Соловьёв", "Высоцкая", "Хабиров", "Ксения", "Цветков"],
)
def test_transliteration_systems_fold_to_one_skeleton(scheme: str, word: str) -> None:
    assert skeleton(getattr(iuliia, scheme).translate(word)) == skeleton(word)


def test_the_diminutive_table_is_data() -> None:
    table = given_names()
    assert table[skeleton("Саша")] == {skeleton("Александр"), skeleton("Александра")}
    assert table[skeleton("Женя")] == {skeleton("Евгений"), skeleton("Евгения")}
    assert skeleton("Екатерина") in table[skeleton("Катя")]
    shorts = [key for key, fulls in table.items() if key not in fulls]
    assert len(shorts) >= 80


def test_a_one_letter_typo_shares_an_index_key() -> None:
    right = parse_name("Александр Демин")
    assert right is not None
    for typo in (
        "Дмеин Саша",
        "Деимн Саша",
        "Демн Саша",
        "Деммин Саша",
        "Дамин Саша",
        "Демина Саша",
    ):
        left = parse_name(typo)
        assert left is not None
        assert set(left.keys) & set(right.keys), typo
    assert set(index_keys("demin")) == {"demin", "emin", "dmin", "dein", "demn", "demi"}


def test_nothing_name_like() -> None:
    assert parse_name("") is None
    assert parse_name(None) is None
    assert parse_name("12345 !!!") is None
