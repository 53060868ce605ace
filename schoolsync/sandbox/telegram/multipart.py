"""`multipart/form-data` bodies (RFC 7578), as the Bot API takes uploads: each part a form field
(text) or a file (`filename` in its Content-Disposition). Written for the sandbox, which has no
multipart library; enough for what Bot API clients send."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAM = re.compile(r'(\w+)\*?="((?:[^"\\]|\\.)*)"|(\w+)=([^;\s]+)')


@dataclass(frozen=True)
class Upload:
    """A file part of the form."""

    filename: str
    content_type: str
    data: bytes


class MultipartError(ValueError):
    pass


def boundary_of(content_type: str) -> bytes:
    for match in _PARAM.finditer(content_type):
        name = (match.group(1) or match.group(3) or "").lower()
        if name == "boundary":
            return (match.group(2) if match.group(1) else match.group(4)).encode("latin-1")
    raise MultipartError("no boundary in the content type")


def parse_form(raw: bytes, content_type: str) -> dict[str, str | Upload]:
    """Every part of the body by its field name (a later part of the same name wins).

    Raises:
        MultipartError: no boundary, no closing delimiter, or a part without a name.
    """
    delimiter = b"--" + boundary_of(content_type)
    chunks = raw.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise MultipartError("the body does not end with the closing delimiter")
    fields: dict[str, str | Upload] = {}
    for chunk in chunks[1:-1]:
        part = chunk.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, separator, body = part.partition(b"\r\n\r\n")
        if not separator:
            raise MultipartError("a part has no header block")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        params: dict[str, str] = {}
        for match in _PARAM.finditer(headers.get("content-disposition", "")):
            if match.group(1):
                params[match.group(1).lower()] = match.group(2)
            else:
                params[match.group(3).lower()] = match.group(4)
        field = params.get("name")
        if not field:
            raise MultipartError("a part has no name")
        if "filename" in params:
            fields[field] = Upload(
                filename=params["filename"],
                content_type=headers.get("content-type", "application/octet-stream"),
                data=body,
            )
        else:
            fields[field] = body.decode("utf-8", "replace")
    return fields
