"""The pure W10 rules: who a teacher's message is about, where feedback goes, survey rows."""

from __future__ import annotations

import pytest

from schoolsync.core.errors import MalformedInputError
from schoolsync.mappings.feedback import (
    Draft,
    FeedbackRules,
    Survey,
    is_negative,
    name_queries,
    people_for,
    read_teacher_message,
    routes_for,
    survey_draft,
)


@pytest.mark.parametrize(
    ("text", "subject", "phone"),
    [
        ("Демин Саша: сделал скворечник", "Демин Саша", None),
        ("Саша Демин — молодец", "Саша Демин", None),
        ("Анна-Мария Петрова - рисовала", "Анна-Мария Петрова", None),
        ("сегодня Иванов Петя очень старался", "Иванов Петя", None),
        ("мама просила перезвонить 8 (923) 123-45-67", None, "+79231234567"),
        ("всё хорошо", None, None),
    ],
)
def test_who_a_teachers_message_is_about(text: str, subject: str | None, phone: str | None) -> None:
    note = read_teacher_message(text)
    assert (note.subject, note.phone) == (subject, phone)


def test_a_name_is_looked_up_both_ways_round() -> None:
    assert name_queries("Демин Саша") == ["Демин Саша", "Саша Демин"]


def draft(text: str = "текст", score: int | None = None, **extra: object) -> Draft:
    return Draft.model_validate(
        {"key": "k", "source": "content", "text": text, "score": score, **extra}
    )


def test_routes_and_people() -> None:
    rules = FeedbackRules.model_validate(
        {
            "routes": [
                {"to": "pedagogical", "max_score": 6},
                {"to": "instructors", "keywords": ["поход"]},
                {"to": "marketing", "source": "survey"},
            ],
            "people": {"Анна": {"chat_id": 5}, "Кирилл Бесчастный": {"channel": "pedagogical"}},
        }
    )
    assert routes_for(draft("был в походе", score=3), rules) == [
        "feedback",
        "pedagogical",
        "instructors",
    ]
    assert routes_for(draft("хорошо", score=9), rules) == ["feedback"]
    assert routes_for(draft("нет оценки"), rules) == ["feedback"]  # no score: not "<= 6"
    assert [n for n, _ in people_for(draft("спасибо Марианне и Жанне"), rules)] == []
    assert [n for n, _ in people_for(draft("спасибо, Анна!"), rules)] == ["Анна"]
    assert [n for n, _ in people_for(draft("x", addressed_to="кирилл бесчастный"), rules)] == [
        "Кирилл Бесчастный"
    ]


def test_negative_on_each_scale() -> None:
    rules = FeedbackRules()
    assert [is_negative(s, 10, rules) for s in (0, 6, 7, 10)] == [True, True, False, False]
    assert [is_negative(s, 5, rules) for s in (1, 3, 4, 5)] == [True, True, False, False]
    assert is_negative(None, 10, rules) is False


SURVEY = Survey(spreadsheet="s", tab="Ответы")
HEADER = [
    "Отметка времени",
    "Адрес электронной почты",
    "ФИО ребенка",
    "Оценка (0–10)",
    "Комментарий",
]


def test_a_survey_row_becomes_client_feedback() -> None:
    row = ["23.11.2026", "Mama@Example.org", "Демин Саша", "7 из 10", "Понравилось"]
    found = survey_draft(SURVEY, HEADER, row, row_number=3, key="k")
    assert found is not None
    assert (found.score, found.email, found.subject, found.author_kind) == (
        7,
        "mama@example.org",
        "Демин Саша",
        "client",
    )
    assert (
        survey_draft(SURVEY, HEADER, ["23.11.2026", "", "", "", ""], row_number=4, key="e") is None
    )


@pytest.mark.parametrize("score", ["десять", "11", "-1", "7.5"])
def test_a_bad_score_names_the_row_and_column(score: str) -> None:
    with pytest.raises(MalformedInputError, match=r"row 5, column 'Оценка \(0–10\)'"):
        survey_draft(SURVEY, HEADER, ["t", "", "", score, "x"], row_number=5, key="k")


def test_a_column_missing_from_the_sheet_is_named() -> None:
    with pytest.raises(MalformedInputError, match="no column 'Комментарий'"):
        survey_draft(SURVEY, HEADER[:4], ["t", "", "", "5"], row_number=2, key="k")


def test_a_survey_rows_answers_are_kept_by_column_for_the_reports() -> None:
    from schoolsync.mappings.feedback import survey_answers

    header = ["Отметка времени", " Оценка ", "Решили с первого раза?", "Комментарий"]
    assert survey_answers(header, ["23.11.2026", "9", "да", ""]) == {
        "Отметка времени": "23.11.2026",
        "Оценка": "9",
        "Решили с первого раза?": "да",
    }
    assert survey_answers(header, ["1"]) == {"Отметка времени": "1"}  # a short row
