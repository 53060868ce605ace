"""Made-up buyers: Russian names, distinct e-mails on reserved domains, phones typed the many
ways people type them (8 923…, +7 (923)…, 923…). Deterministic for a given seed."""

from __future__ import annotations

import random
from dataclasses import dataclass

# (Russian, Latin for the e-mail) pairs, so no transliteration is needed.
_MALE = [
    ("Иван", "ivan"), ("Алексей", "aleksey"), ("Дмитрий", "dmitriy"), ("Сергей", "sergey"),
    ("Андрей", "andrey"), ("Михаил", "mikhail"), ("Никита", "nikita"), ("Артём", "artyom"),
    ("Павел", "pavel"), ("Роман", "roman"), ("Егор", "egor"), ("Владимир", "vladimir"),
]  # fmt: skip
_FEMALE = [
    ("Анна", "anna"), ("Мария", "maria"), ("Елена", "elena"), ("Ольга", "olga"),
    ("Наталья", "natalya"), ("Екатерина", "ekaterina"), ("Татьяна", "tatyana"),
    ("Ирина", "irina"), ("Светлана", "svetlana"), ("Юлия", "yulia"), ("Дарья", "darya"),
    ("Ксения", "ksenia"),
]  # fmt: skip
# Male surname, female surname, Latin.
_SURNAMES = [
    ("Иванов", "Иванова", "ivanov"), ("Петров", "Петрова", "petrov"),
    ("Смирнов", "Смирнова", "smirnov"), ("Кузнецов", "Кузнецова", "kuznetsov"),
    ("Попов", "Попова", "popov"), ("Соколов", "Соколова", "sokolov"),
    ("Лебедев", "Лебедева", "lebedev"), ("Новиков", "Новикова", "novikov"),
    ("Морозов", "Морозова", "morozov"), ("Волков", "Волкова", "volkov"),
    ("Соловьёв", "Соловьёва", "solovyov"), ("Васильев", "Васильева", "vasilyev"),
    ("Зайцев", "Зайцева", "zaytsev"), ("Белов", "Белова", "belov"),
    ("Орлов", "Орлова", "orlov"), ("Макаров", "Макарова", "makarov"),
]  # fmt: skip
_CITIES = [
    "Москва", "Санкт-Петербург", "Новосибирск", "Екатеринбург", "Казань",
    "Нижний Новгород", "Красноярск", "Самара", "Краснодар", "",
]  # fmt: skip
_DOMAINS = ["example.com", "example.org", "example.net", "mail.example"]
_OPERATOR_CODES = ["903", "905", "910", "915", "916", "921", "923", "926", "950", "985", "999"]


@dataclass(frozen=True)
class Person:
    first_name: str
    last_name: str
    email: str
    phone: str
    city: str


def typed_phone(rng: random.Random) -> str:
    """A Russian mobile number in one of the formats people type into order forms."""
    code = rng.choice(_OPERATOR_CODES)
    a, b, c = f"{rng.randrange(1000):03d}", f"{rng.randrange(100):02d}", f"{rng.randrange(100):02d}"
    return rng.choice(
        [
            f"8 {code} {a}-{b}-{c}",
            f"+7 ({code}) {a}-{b}-{c}",
            f"{code}{a}{b}{c}",
            f"8{code}{a}{b}{c}",
            f"+7{code}{a}{b}{c}",
            f"7 {code} {a} {b} {c}",
            f"8({code}){a}{b}{c}",
        ]
    )


def make_person(rng: random.Random, serial: int) -> Person:
    """A buyer; `serial` makes the e-mail unique within one account."""
    female = rng.random() < 0.6
    first, first_latin = rng.choice(_FEMALE if female else _MALE)
    male_surname, female_surname, surname_latin = rng.choice(_SURNAMES)
    email = f"{first_latin}.{surname_latin}{serial}@{rng.choice(_DOMAINS)}"
    if rng.random() < 0.1:
        email = email.capitalize()  # people do type capitals; the account compares without case
    return Person(
        first_name=first,
        last_name=female_surname if female else male_surname,
        email=email,
        phone=typed_phone(rng),
        city=rng.choice(_CITIES),
    )
