"""Telegram's `parse_mode=HTML`: the tags it knows, well-formedness, the text that remains and
the entities (formatting spans) Telegram would store with it.

Modelled on tdlib's `parse_html` (the error wording is the one Telegram answers with, as quoted by
many public bots): `Unsupported start tag "p" at byte offset 0`, `Unclosed start tag at byte
offset N`, `Unexpected end tag at byte offset N`, `Unmatched end tag at byte offset N, expected
"</b>", found "</i>"`, `Can't find end tag corresponding to start tag "b"`. Byte offsets count
UTF-8 bytes. Named entities other than `&lt; &gt; &amp; &quot;` and numeric ones stay literal,
as does a bare `&` or `>`.

Entities count offsets and lengths in UTF-16 code units, as the Bot API does. Tags map to
`bold`, `italic`, `underline`, `strikethrough`, `spoiler`, `text_link` (with `url`), `code`,
`pre` (a `<code class="language-x">` directly inside takes the place of a `code` entity and
gives the `pre` its `language`), `blockquote` and `expandable_blockquote`. The list is
normalised: empty spans dropped, duplicates merged, sorted by offset. Not modelled: merging of
touching spans of the same type, `tg://user` mentions, custom emoji.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ALLOWED_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
    }
)

_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}

_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ATTRIBUTE = re.compile(r"""\s+([a-zA-Z-]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>"']+))?""")


class EntityParseError(ValueError):
    """The HTML is not something Telegram accepts; `str()` is Telegram's wording."""


@dataclass(frozen=True, order=True)
class Entity:
    """One formatting span; `offset` and `length` in UTF-16 code units."""

    offset: int
    length: int
    type: str
    url: str | None = None
    language: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "offset": self.offset, "length": self.length}
        if self.url is not None:
            body["url"] = self.url
        if self.language is not None:
            body["language"] = self.language
        return body


@dataclass(frozen=True)
class ParsedText:
    """The text Telegram stores and its normalised entities."""

    text: str
    entities: tuple[Entity, ...] = ()

    def strip(self) -> ParsedText:
        """Leading and trailing whitespace removed, as Telegram does; entities follow the text."""
        stripped = self.text.strip()
        if stripped == self.text:
            return self
        start = utf16_len(self.text[: len(self.text) - len(self.text.lstrip())])
        end = start + utf16_len(stripped)
        kept: list[Entity] = []
        for entity in self.entities:
            low = max(entity.offset, start)
            high = min(entity.offset + entity.length, end)
            if high > low:
                kept.append(
                    Entity(low - start, high - low, entity.type, entity.url, entity.language)
                )
        return ParsedText(stripped, normalise(kept))


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def normalise(entities: list[Entity]) -> tuple[Entity, ...]:
    return tuple(sorted({entity for entity in entities if entity.length > 0}))


@dataclass
class _Open:
    name: str
    start: int  # UTF-16 offset in the output
    attributes: dict[str, str]
    language: str | None = None


def _name_at(html: str, start: int) -> tuple[str, int]:
    end = start
    while end < len(html) and html[end].isascii() and (html[end].isalnum() or html[end] == "-"):
        end += 1
    return html[start:end].lower(), end


def _skip_space(html: str, start: int) -> int:
    while start < len(html) and html[start].isspace():
        start += 1
    return start


def _decode(token: str) -> str | None:
    body = token[1:-1]
    if body in _NAMED:
        return _NAMED[body]
    code = int(body[2:], 16) if body[1:2] in "xX" else int(body[1:])
    if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
        return chr(code)
    return None


def _close(tag: _Open, end: int, stack: list[_Open]) -> Entity | None:
    """The entity a closed tag makes, or None when it makes none (a pre's language code)."""
    if tag.name == "code" and stack and stack[-1].name == "pre":
        css_class = tag.attributes.get("class", "")
        if css_class.startswith("language-") and stack[-1].start == tag.start:
            stack[-1].language = css_class.removeprefix("language-")
            return None
    kind = _ENTITY_TYPES[tag.name]
    if kind == "blockquote" and "expandable" in tag.attributes:
        kind = "expandable_blockquote"
    url = tag.attributes.get("href", "") if kind == "text_link" else None
    language = tag.language if kind == "pre" else None
    return Entity(tag.start, end - tag.start, kind, url, language)


def parse_html(html: str) -> ParsedText:
    """The message text and entities Telegram would store for `html`, or `EntityParseError`."""
    out: list[str] = []
    position = 0  # UTF-16 length of what is in `out`
    entities: list[Entity] = []
    stack: list[_Open] = []
    i = 0
    n = len(html)

    def offset(index: int) -> int:
        return len(html[:index].encode())

    def emit(text: str) -> None:
        nonlocal position
        out.append(text)
        position += utf16_len(text)

    while i < n:
        char = html[i]
        if char == "&":
            match = _ENTITY.match(html, i)
            decoded = _decode(match.group(0)) if match else None
            if match and decoded is not None:
                emit(decoded)
                i = match.end()
            else:
                emit("&")
                i += 1
            continue
        if char != "<":
            emit(char)
            i += 1
            continue
        begin = i
        if html.startswith("</", i):
            name, end = _name_at(html, i + 2)
            end = _skip_space(html, end)
            if end >= n or html[end] != ">":
                raise EntityParseError(f"Unclosed end tag at byte offset {offset(begin)}")
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {offset(begin)}")
            if name != stack[-1].name:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {offset(begin)}, "
                    f'expected "</{stack[-1].name}>", found "</{name}>"'
                )
            entity = _close(stack.pop(), position, stack)
            if entity is not None:
                entities.append(entity)
            i = end + 1
            continue
        name, j = _name_at(html, i + 1)
        if name not in ALLOWED_TAGS:
            raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {offset(begin)}')
        attributes: dict[str, str] = {}
        while (attribute := _ATTRIBUTE.match(html, j)) is not None:
            value = attribute.group(2) or ""
            if value[:1] in ('"', "'"):
                value = value[1:-1]
            attributes[attribute.group(1).lower()] = value
            j = attribute.end()
        j = _skip_space(html, j)
        if j >= n or html[j] != ">":
            raise EntityParseError(f"Unclosed start tag at byte offset {offset(begin)}")
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {offset(begin)}'
            )
        stack.append(_Open(name, position, attributes))
        i = j + 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return ParsedText("".join(out), normalise(entities))


def html_to_text(html: str) -> str:
    """The message text Telegram would store for `html`, or `EntityParseError`."""
    return parse_html(html).text
