"""Text for Telegram's HTML parse mode: escaping, and splitting into messages that fit.

Telegram allows 1-4096 characters per message "after entities parsing", that is counting what
the reader sees, without tags and with ``&amp;`` as one character. We count more than that, on
purpose: the **raw HTML source in UTF-16 code units** (an emoji outside the BMP counts 2, as in
Telegram's entity offsets). That is never less than the visible length, however Telegram counts
it, so a part we produce is never "message is too long". The price is parts a little shorter
than they could be when the text is tag-heavy.

Splitting never cuts inside a tag (``<b>``, ``<a href="...">``) or an entity (``&amp;``,
``&#128512;``), nor between the two halves of a surrogate pair. It does not re-balance tags: an
element that spans lines (``<b>a\\nb</b>``) may end up cut in two, which Telegram rejects, so
templates keep each element within one line.
"""

from __future__ import annotations

import re

MESSAGE_LIMIT = 4096  # Bot API sendMessage text, after entities parsing
_ATOM = re.compile(r"<[^<>]*>|&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z]{1,10});|.", re.DOTALL)
_MIN_LIMIT = 16


def escape_html(text: str) -> str:
    """``text`` safe inside Telegram HTML: ``&``, ``<``, ``>`` become entities.

    Quotes are left alone: Telegram needs only these three escaped (in attribute values we
    write, a ``"`` must be ``&quot;``; use ``html.escape`` there).
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def size(text: str) -> int:
    """What we count against the limit: UTF-16 code units of the raw text."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def split_message(html: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Parts of ``html``, each at most ``limit`` (see :func:`size`), in order.

    Parts end at line breaks where possible, the break itself dropped; a single line longer than
    ``limit`` is cut hard, between tags, entities and characters. ``"".join`` of the parts is
    ``html`` less the dropped line breaks. An empty ``html`` has no parts.

    Raises:
        ValueError: ``limit`` below 16, or one tag or entity longer than ``limit``.
    """
    if limit < _MIN_LIMIT:
        raise ValueError(f"limit must be at least {_MIN_LIMIT}")
    if not html:
        return []
    parts: list[str] = []
    current: str | None = None  # None: nothing yet (not even an empty line)
    for line in html.split("\n"):
        if current is not None and size(current) + 1 + size(line) <= limit:
            current = f"{current}\n{line}"
            continue
        if current is not None:
            parts.append(current)
        if size(line) <= limit:
            current = line
            continue
        pieces = _cut(line, limit)
        parts.extend(pieces[:-1])
        current = pieces[-1]
    if current is not None:
        parts.append(current)
    return parts


def _cut(line: str, limit: int) -> list[str]:
    """``line`` cut between atoms (tags, entities, characters) into pieces of at most ``limit``."""
    pieces: list[str] = []
    piece: list[str] = []
    used = 0
    for match in _ATOM.finditer(line):
        atom = match.group()
        weight = size(atom)
        if weight > limit:
            raise ValueError("a tag or entity is longer than the message limit")
        if used + weight > limit:
            pieces.append("".join(piece))
            piece, used = [], 0
        piece.append(atom)
        used += weight
    pieces.append("".join(piece))
    return pieces
