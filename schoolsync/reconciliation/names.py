"""People's names as payers and clients write them, reduced to something comparable.

``Демин Саша``, ``Demin Sasha``, ``Александр Демин``, ``Демин А.``, ``Деминой Саши`` are the
same person to a manager; here each becomes a ``PersonName``: Latin skeletons of its words
(Cyrillic transliterated with iuliia, then spelling variants of the transliteration systems
folded together: ``Yevgeny``/``Evgenii``, ``Aleksandr``/``Alexandr``, ``Yulia``/``Iuliia``),
surnames without their feminine endings (``Демина`` -> ``demin``, ``-ская`` -> ``-ski``),
given names mapped to the full names they may stand for through the diminutives table
(``data/diminutives.csv``: Саша -> Александр, Александра), initials kept as letters,
patronymics dropped.

``similarity`` compares two names in [0, 1]: the surnames (exact, or close for a typo or two
letters swapped) carry it, the given names confirm (the same name or a diminutive, an
initial, a close spelling) or refute (two different known names) it. ``index_keys`` are the keys a name is found by: its possible
surnames with and without a feminine ending and, for longer ones, every one-letter deletion
of them (so a one-letter typo still meets its original).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from rapidfuzz.distance import OSA

SURNAME_MIN = 0.75  # surnames less alike than this are different surnames
GIVEN_MISSING = 0.4  # one side has no given name at all
INITIAL_MATCH = 0.8
FUZZY_GIVEN_MIN = 0.8  # a misspelt given name still counts from here
GENDER_MISMATCH = 0.95  # Демин vs Демина: a husband may pay for his wife, but less likely

_WORD = re.compile(r"[^\W\d_]+\.?")
_APOSTROPHES = {ord(ch): None for ch in "'’ʼʹ`´"}  # Mel'nikova, Natal’ya: part of the word
_CYRILLIC = re.compile(r"[а-я]")
_NOT_LATIN = re.compile(r"[^a-z]")
_C_NOT_H = re.compile(r"c(?!h)")
_REPEATS = re.compile(r"(.)\1+")
_LATIN_FOLDS = (
    ("x", "ks"),
    ("w", "v"),
    ("q", "k"),
    ("shch", "sh"),
    ("sch", "sh"),
    ("tch", "ch"),
    ("kh", "h"),
    ("tz", "ts"),
    ("tc", "ts"),
    ("ck", "k"),
    ("ph", "f"),
)
_ONE_LETTER = (("ch", "q"), ("ts", "c"), ("sh", "w"), ("zh", "x"))  # one Cyrillic letter, one edit
_FEMININE = (
    ("ska1", "ski"),
    ("skoi", "ski"),
    ("ovoi", "ov"),
    ("evoi", "ev"),
    ("inoi", "in"),
    ("ova", "ov"),
    ("eva", "ev"),
    ("ina", "in"),
    ("sk2", "ski"),  # accusative: -скую, -ову, -еву, -ину
    ("ovu", "ov"),
    ("evu", "ev"),
    ("inu", "in"),
)
_MASCULINE = ("ov", "ev", "in", "ski")
_PATRONYMIC = ("oviq", "eviq", "ovna", "evna", "iqna")  # -ович, -евич, -овна, -евна, -ична
_GIVEN_ENDINGS = ("oi", "ei", "om", "em", "2", "i", "e", "u")  # Саши, Саше, Сашу, Сашей, Юлию
_NOISE = frozenset(
    {"ооо", "ип", "зао", "оао", "ао", "llc", "ltd", "inc", "mr", "mrs", "ms", "miss"}
)


def skeleton(word: str) -> str:
    """The Latin skeleton of one word: transliterated, lower case, ASCII, with the differences
    between transliteration systems folded and every Russian letter one character, so that one
    typo is one edit (``Щукин``, ``Shchukin``, ``Schukin`` -> ``wukin``; ``Юлия``, ``Iuliia``,
    ``Yulia`` -> ``2l1``)."""
    text = word.lower().replace("ё", "е")
    if _CYRILLIC.search(text):
        text = _translit(text).lower()
    else:
        text = "".join(
            ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
        )
    text = _NOT_LATIN.sub("", text)
    for old, new in _LATIN_FOLDS:
        text = text.replace(old, new)
    text = _C_NOT_H.sub("k", text)
    for old, new in _ONE_LETTER:
        text = text.replace(old, new)
    text = text.replace("j", "i").replace("y", "i")
    text = _REPEATS.sub(r"\1", text)
    text = text.replace("ie", "e").replace("io", "e")  # Yevgeny/Evgeny, Pyotr/Petr, -yev/-ev
    text = text.replace("ia", "1").replace("iu", "2")  # я, ю: one letter, one edit
    return _REPEATS.sub(r"\1", text)


def _translit(text: str) -> str:
    return str(_wikipedia().translate(text))


@cache
def _wikipedia() -> Any:
    """iuliia's Wikipedia schema (any would do: the skeleton folds the systems together);
    imported on first use, as iuliia lists its schema files when imported."""
    import iuliia  # type: ignore[import-untyped]

    return iuliia.WIKIPEDIA


@cache
def given_names() -> dict[str, frozenset[str]]:
    """Skeleton of a given name or diminutive -> skeletons of the full names it may stand for,
    from ``data/diminutives.csv`` (read once, on first use)."""
    table = resources.files("schoolsync.reconciliation") / "data" / "diminutives.csv"
    names: dict[str, set[str]] = {}
    for row in csv.DictReader(table.read_text(encoding="utf-8").splitlines()):
        fulls = [skeleton(full) for full in row["full_names"].split("|") if full.strip()]
        names.setdefault(skeleton(row["name"]), set()).update(fulls)
        for full in fulls:
            names.setdefault(full, set()).add(full)
    return {short: frozenset(fulls) for short, fulls in names.items()}


@cache
def given_forms() -> dict[str, frozenset[str]]:
    """Skeleton of a full given name -> every form in the table that stands for it."""
    forms: dict[str, set[str]] = {}
    for short, fulls in given_names().items():
        for full in fulls:
            forms.setdefault(full, set()).add(short)
    return {full: frozenset(shorts) for full, shorts in forms.items()}


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a name."""

    skel: str
    base: str  # as a surname: feminine ending removed
    feminine: bool | None  # as a surname: which form (None: cannot tell)
    given: frozenset[str]  # full given names it may stand for; empty: not a known given name
    initial: str  # an initial's letter ("а." -> "a"); empty for words
    forms: tuple[str, ...] = ()  # as a surname: base and skeleton (one if the same)

    @property
    def letters(self) -> frozenset[str]:
        """First letters it may start with (for comparing with an initial)."""
        return frozenset({self.skel[:1], *(name[:1] for name in self.given)})


@dataclass(frozen=True, slots=True)
class PersonName:
    tokens: tuple[Token, ...]
    surnames: tuple[int, ...]  # indexes of the tokens that may be the surname
    has_surname: bool  # a word that is not a known given name (else ``surnames`` guesses)
    forms: tuple[str, ...]  # its possible surnames, with and without a feminine ending
    keys: tuple[str, ...]  # ``index_keys`` of ``forms``


@lru_cache(maxsize=65_536)
def _token(word: str) -> Token | None:
    if word in _NOISE:
        return None
    bare = word.rstrip(".")
    skel = skeleton(bare)
    if not skel:
        return None
    if len(bare) == 1 or (word.endswith(".") and len(bare) <= 2):
        return Token(skel[:1], "", None, frozenset(), skel[:1])
    table = given_names()
    given = table.get(skel, frozenset())
    if not given and len(skel) >= 3:
        for ending in _GIVEN_ENDINGS:
            if skel.endswith(ending):
                stem = skel[: -len(ending)]
                given = (
                    table.get(stem + "a", frozenset())
                    | table.get(stem + "1", frozenset())
                    | table.get(stem, frozenset())
                )
                break
    base, feminine = skel, None
    for ending, masculine in _FEMININE:
        if skel.endswith(ending) and len(skel) > len(ending) + 1:
            base, feminine = skel[: -len(ending)] + masculine, True
            break
    else:
        if skel.endswith(_MASCULINE):
            feminine = False
    return Token(skel, base, feminine, given, "", tuple(sorted({base, skel})))


@lru_cache(maxsize=262_144)
def parse_name(raw: str | None) -> PersonName | None:
    """``None`` when there is nothing name-like in ``raw``."""
    if not raw:
        return None
    words = _WORD.findall(raw.lower().translate(_APOSTROPHES))
    tokens = [token for token in map(_token, words) if token is not None]
    if len(tokens) > 1:
        kept = [t for t in tokens if t.initial or not t.skel.endswith(_PATRONYMIC)]
        tokens = kept or tokens
    if not tokens:
        return None
    words_only = [i for i, t in enumerate(tokens) if not t.initial]
    surnames = [i for i in words_only if not tokens[i].given]
    chosen = tuple(surnames or words_only)
    forms = tuple(sorted({form for index in chosen for form in tokens[index].forms}))
    keys = tuple(sorted({key for form in forms for key in index_keys(form)}))
    return PersonName(tuple(tokens), chosen, bool(surnames), forms, keys)


@lru_cache(maxsize=65_536)
def index_keys(form: str) -> tuple[str, ...]:
    """Keys a surname form is found by: itself and, from five letters on, its one-letter
    deletions, so that two surnames one edit apart (a typo, Демин and Демина) share a key."""
    if len(form) < 5:
        return (form,)
    return (form, *sorted({form[:i] + form[i + 1 :] for i in range(len(form))}))


def similarity(a: PersonName, b: PersonName) -> float:
    """How likely ``a`` and ``b`` name the same person, in [0, 1]; 0 without a common surname."""
    best = 0.0
    for i in a.surnames:
        ta = a.tokens[i]
        for j in b.surnames:
            tb = b.tokens[j]
            if ta.base == tb.base or ta.skel == tb.skel:
                surname = 1.0
            else:  # a typo can hide the ending: compare with and without it
                surname = max(
                    OSA.normalized_similarity(ta.base, tb.base, score_cutoff=SURNAME_MIN),
                    OSA.normalized_similarity(ta.skel, tb.skel, score_cutoff=SURNAME_MIN),
                )
                if surname < SURNAME_MIN:
                    continue
            rest_a = [t for k, t in enumerate(a.tokens) if k != i]
            rest_b = [t for k, t in enumerate(b.tokens) if k != j]
            value = surname * (0.6 + 0.4 * _given(rest_a, rest_b))
            if ta.feminine is not None and tb.feminine is not None and ta.feminine != tb.feminine:
                value *= GENDER_MISMATCH
            best = max(best, value)
    return best


def _given(rest_a: list[Token], rest_b: list[Token]) -> float:
    if not rest_a or not rest_b:
        return GIVEN_MISSING
    return max(_pair(x, y) for x in rest_a for y in rest_b)


def _pair(x: Token, y: Token) -> float:
    if x.initial and y.initial:
        return 0.6 if x.initial == y.initial else 0.0
    if x.initial or y.initial:
        initial, word = (x, y) if x.initial else (y, x)
        return INITIAL_MATCH if initial.initial in word.letters else 0.0
    if x.given and y.given:
        return 1.0 if x.given & y.given else 0.0
    close = max(
        max(OSA.normalized_similarity(x.skel, other) for other in _forms(y)),
        max(OSA.normalized_similarity(y.skel, other) for other in _forms(x)),
    )
    return 0.9 * close if close >= FUZZY_GIVEN_MIN else 0.0


def _forms(token: Token) -> set[str]:
    """The token as written and every form of the given names it may be (Ксюша for Ксения)."""
    table = given_forms()
    found = {token.skel, *token.given}
    for full in token.given:
        found.update(table.get(full, ()))
    return found
