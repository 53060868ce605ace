"""Escaping and splitting for Telegram's HTML parse mode."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schoolsync.connectors.telegram.text import MESSAGE_LIMIT, escape_html, size, split_message

ATOMS = re.compile(r"<[^<>]*>|&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z]{1,10});")


def test_escape_html_only_the_three_characters() -> None:
    assert escape_html('<b>Tom & "Jerry"</b>') == '&lt;b&gt;Tom &amp; "Jerry"&lt;/b&gt;'
    assert escape_html("&amp;") == "&amp;amp;"


def test_short_message_is_one_part() -> None:
    assert split_message("<b>Привет</b>\nмир") == ["<b>Привет</b>\nмир"]
    assert split_message("") == []


def test_ten_thousand_characters_split_on_line_boundaries() -> None:
    lines = [f"<b>{i:04d}</b> {escape_html('оплата & возврат')} " + "x" * 80 for i in range(100)]
    html = "\n".join(lines)
    assert len(html) > 10_000
    parts = split_message(html)
    assert len(parts) == 3
    assert all(size(part) <= MESSAGE_LIMIT for part in parts)
    assert "\n".join(parts) == html  # every cut was at a line break
    for part in parts:  # every part starts with a whole line
        assert part.startswith("<b>")


def test_long_line_is_cut_hard_but_not_inside_entities_or_tags() -> None:
    line = "<b>" + "&amp;" * 30 + "</b>" + "a" * 7
    parts = split_message(line, limit=16)
    assert "".join(parts) == line
    for part in parts:
        assert size(part) <= 16
        assert ATOMS.sub("", part).count("&") == 0  # every & belongs to a whole entity
        assert "<" not in ATOMS.sub("", part)  # every < belongs to a whole tag


def test_astral_characters_count_two_and_are_never_halved() -> None:
    html = "😀" * 20
    parts = split_message(html, limit=16)
    assert parts == ["😀" * 8, "😀" * 8, "😀" * 4]


def test_a_tag_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than the message limit"):
        split_message('<a href="https://example.org/' + "x" * 40 + '">a</a>', limit=16)


def test_limit_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        split_message("text", limit=4)


def only_newlines_removed(original: str, joined: str) -> bool:
    """Whether ``joined`` is ``original`` with some ``\\n`` characters left out."""
    i = 0
    for char in original:
        if i < len(joined) and joined[i] == char:
            i += 1
        elif char != "\n":
            return False
    return i == len(joined)


pieces = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="<>&"), max_size=30),
    st.sampled_from(["\n", "\n\n", "<b>", "</b>", "<i>", '<a href="https://x.org/?a=1">', "</a>"]),
    st.sampled_from(["&amp;", "&lt;", "&gt;", "&quot;", "&#128512;", "&#x1F600;", "😀", "я"]),
    st.text(alphabet="abc \n", min_size=20, max_size=120),
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(pieces, max_size=60), limit=st.integers(min_value=40, max_value=200))
def test_split_properties(parts: list[str], limit: int) -> None:
    html = "".join(parts)
    chunks = split_message(html, limit=limit)
    assert all(size(chunk) <= limit for chunk in chunks)
    assert only_newlines_removed(html, "".join(chunks))
    assert len("".join(chunks)) >= len(html) - max(len(chunks) - 1, 0)  # one break per cut
    for chunk in chunks:
        rest = ATOMS.sub("", chunk)
        assert "&" not in rest and "<" not in rest and ">" not in rest  # no atom was cut
    if html:
        assert chunks
