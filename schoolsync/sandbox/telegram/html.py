"""Telegram's `parse_mode=HTML`: the tags it knows, well-formedness, and the text that remains.

Modelled on tdlib's `parse_html` (the error wording is the one Telegram answers with, as quoted by
many public bots): `Unsupported start tag "p" at byte offset 0`, `Unclosed start tag at byte
offset N`, `Unexpected end tag at byte offset N`, `Unmatched end tag at byte offset N, expected
"</b>", found "</i>"`, `Can't find end tag corresponding to start tag "b"`. Byte offsets count
UTF-8 bytes. Named entities other than `&lt; &gt; &amp; &quot;` and numeric ones stay literal,
as does a bare `&` or `>`.
"""

from __future__ import annotations

import re

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

_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ATTRIBUTE = re.compile(r"""\s+([a-zA-Z-]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>"']+))?""")


class EntityParseError(ValueError):
    """The HTML is not something Telegram accepts; `str()` is Telegram's wording."""


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


def html_to_text(html: str) -> str:
    """The message text Telegram would store for `html`, or `EntityParseError`."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    n = len(html)

    def offset(position: int) -> int:
        return len(html[:position].encode())

    while i < n:
        char = html[i]
        if char == "&":
            match = _ENTITY.match(html, i)
            decoded = _decode(match.group(0)) if match else None
            if match and decoded is not None:
                out.append(decoded)
                i = match.end()
            else:
                out.append("&")
                i += 1
            continue
        if char != "<":
            out.append(char)
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
            if name != stack[-1]:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {offset(begin)}, "
                    f'expected "</{stack[-1]}>", found "</{name}>"'
                )
            stack.pop()
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
        stack.append(name)
        i = j + 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)
