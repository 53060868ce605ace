"""The YAML configuration file: schools, their accounts, channels, mappings and rules.

A file may describe one school at its top level, or several under ``schools:``. Problems are
reported with the file, line and path of the offending value, never with a traceback. Secrets
are refused here: they come from the environment (``core.settings``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_SCHOOL = "default"
SECRET_KEY = re.compile(
    r"(secret|token|password|passwd|api_key|apikey|private_key)$", re.IGNORECASE
)


class ChannelTarget(BaseModel):
    """A Telegram group (and optionally a forum topic in it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chat_id: int | str
    topic: int | None = None


class School(BaseModel):
    """One school: its own accounts, channels and rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default=DEFAULT_SCHOOL, pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    name: str | None = None
    timezone: str = "Europe/Moscow"
    accounts: dict[str, dict[str, Any]] = {}
    channels: dict[str, ChannelTarget | int | str] = {}
    mappings: dict[str, Any] = {}
    rules: dict[str, Any] = {}

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Moscow)"
            ) from None
        return value

    def block(self, path: str) -> Any:
        """The raw value at a dotted path inside this school (``"accounts.amocrm"``), or None."""
        node: Any = self.model_dump()
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class AppConfig(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schools: list[School] = Field(default_factory=lambda: [School()], min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> AppConfig:
        seen: set[str] = set()
        for school in self.schools:
            if school.id in seen:
                raise ValueError(f"school id {school.id!r} is used twice")
            seen.add(school.id)
        return self

    def school(self, school_id: str) -> School | None:
        return next((s for s in self.schools if s.id == school_id), None)

    @property
    def default_school(self) -> School:
        return self.schools[0]


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in the file, located as precisely as the file allows."""

    file: str
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{place}: {self.where}: {self.message}" if self.where else f"{place}: {self.message}"
        )


class ConfigFileError(Exception):
    """The file has problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


Blocks = Mapping[str, type[BaseModel]]
"""Typed blocks inside each school, by dotted path (``"accounts.amocrm"``): each platform's
connector and mapping bring their own model, so the core does not know the platforms."""


def load_config(path: Path, *, required: bool = False, blocks: Blocks | None = None) -> AppConfig:
    """Read and validate the file at ``path``; a missing optional file means one default school.

    Raises:
        ConfigFileError: listing every problem with its line.
    """
    if not path.exists():
        if required:
            raise ConfigFileError([ConfigProblem(str(path), None, "", "file not found")])
        return AppConfig()
    text = path.read_text(encoding="utf-8")
    return parse_config(text, source=str(path), blocks=blocks)


def parse_config(
    text: str, *, source: str = "schoolsync.yaml", blocks: Blocks | None = None
) -> AppConfig:
    """Validate YAML text; see ``load_config``."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigFileError(
            [ConfigProblem(source, line, "", f"not valid YAML: {problem}")]
        ) from None
    if data is None:
        return AppConfig()
    if not isinstance(data, dict):
        raise ConfigFileError(
            [ConfigProblem(source, 1, "", "the file must be a mapping of settings")]
        )

    single = "schools" not in data
    document = {"schools": [data]} if single else data
    problems = _secret_problems(root, source)
    try:
        config = AppConfig.model_validate(document)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            file_loc = loc[2:] if single and loc[:2] == ("schools", 0) else loc
            problems.append(
                ConfigProblem(source, _line_of(root, file_loc), _dotted(file_loc), _message(error))
            )
        config = None
    if config is not None:
        for index, school in enumerate(config.schools):
            for path, model in (blocks or {}).items():
                value = school.block(path)
                if value is None:
                    continue
                try:
                    validated = model.model_validate(value)
                except ValidationError as exc:
                    for error in exc.errors():
                        loc = (*path.split("."), *error["loc"])
                        file_loc = loc if single else ("schools", index, *loc)
                        problems.append(
                            ConfigProblem(
                                source,
                                _line_of(root, file_loc),
                                _dotted(file_loc),
                                _message(error),
                            )
                        )
                    continue
                problems += _channel_problems(root, source, single, index, school, path, validated)
    if problems or config is None:
        raise ConfigFileError(problems)
    return config


def _channel_problems(
    root: yaml.Node | None,
    source: str,
    single: bool,
    index: int,
    school: School,
    path: str,
    block: BaseModel,
) -> list[ConfigProblem]:
    """A block that sends to channels (it has ``channels_used()``: ``(where, key)`` pairs, where
    is a path inside the block) may only name channels the school configures under
    ``channels:``."""
    used = getattr(block, "channels_used", None)
    if used is None:
        return []
    found = []
    for where, key in used():
        if key in school.channels:
            continue
        loc: tuple[Any, ...] = (*path.split("."), *where)
        file_loc = loc if single else ("schools", index, *loc)
        known = ", ".join(sorted(school.channels)) or "none"
        found.append(
            ConfigProblem(
                source,
                _line_of(root, file_loc),
                _dotted(file_loc),
                f"channel {key!r} is not configured under `channels:` (configured: {known})",
            )
        )
    return found


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown setting (check the spelling)"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the node at ``loc``, or of its nearest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            key = next((k for k, _ in node.value if getattr(k, "value", None) == str(part)), None)
            if match is None:
                return line
            line = (key or match).start_mark.line + 1
            node = match
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _secret_problems(root: yaml.Node | None, source: str) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = str(getattr(key, "value", ""))
                if SECRET_KEY.search(name) and isinstance(value, yaml.ScalarNode) and value.value:
                    problems.append(
                        ConfigProblem(
                            source,
                            key.start_mark.line + 1,
                            _dotted((*path, name)),
                            "secrets are not read from the file; set it in the environment "
                            "(SCHOOLSYNC_...) and remove it here",
                        )
                    )
                walk(value, (*path, name))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    if root is not None:
        walk(root, ())
    return problems
