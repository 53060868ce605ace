from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from schoolsync.app.cli import app
from schoolsync.core.config import ConfigFileError, load_config, parse_config


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigFileError) as caught:
        parse_config(text, source="s.yaml")
    return [str(p) for p in caught.value.problems]


def test_missing_optional_file_means_one_default_school(tmp_path: Path) -> None:
    config = load_config(tmp_path / "none.yaml")
    assert [s.id for s in config.schools] == ["default"]
    assert config.default_school.timezone == "Europe/Moscow"


def test_one_school_file_needs_no_nesting() -> None:
    config = parse_config("name: Студия\ntimezone: Asia/Novosibirsk\nchannels:\n  sales: -100123\n")
    school = config.default_school
    assert (school.id, school.name, school.timezone, school.channels["sales"]) == (
        "default",
        "Студия",
        "Asia/Novosibirsk",
        -100123,
    )


def test_several_schools() -> None:
    config = parse_config("schools:\n  - id: north\n  - id: south\n    timezone: Europe/Samara\n")
    assert [s.id for s in config.schools] == ["north", "south"]


def test_every_problem_is_reported_with_its_line() -> None:
    found = problems(
        "schools:\n"
        "  - id: north\n"
        "    timezone: Europe/Moskow\n"
        "  - id: South School\n"
        "    chanels: {}\n"
    )
    assert "s.yaml:3: schools[0].timezone: unknown time zone 'Europe/Moskow'" in found[0]
    assert found[1].startswith("s.yaml:4: schools[1].id:")
    assert found[2] == "s.yaml:5: schools[1].chanels: unknown setting (check the spelling)"


def test_single_school_locations_have_no_schools_prefix() -> None:
    assert problems("name: x\ntimezone: Mars/Base\n") == [
        "s.yaml:2: timezone: unknown time zone 'Mars/Base' (use an IANA name like Europe/Moscow)"
    ]


def test_secrets_in_the_file_are_refused() -> None:
    found = problems("accounts:\n  amocrm:\n    subdomain: school\n    client_secret: abc\n")
    assert found == [
        "s.yaml:4: accounts.amocrm.client_secret: secrets are not read from the file; "
        "set it in the environment (SCHOOLSYNC_...) and remove it here"
    ]


def test_broken_yaml_names_the_line() -> None:
    (problem,) = problems("name: x\nchannels: [unclosed\n")
    assert problem.startswith("s.yaml:3: not valid YAML")


def test_duplicate_school_ids() -> None:
    assert "school id 'a' is used twice" in problems("schools:\n  - id: a\n  - id: a\n")[0]


def test_check_config_command_exit_codes(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("name: School\n")
    bad.write_text("timezone: Nowhere\nextra: 1\n")
    runner = CliRunner()
    ok = runner.invoke(app, ["check-config", str(good)])
    assert ok.exit_code == 0 and "OK (1 school(s): default)" in ok.output
    failed = runner.invoke(app, ["check-config", str(bad)])
    assert failed.exit_code == 1
    assert "bad.yaml:1: timezone: unknown time zone 'Nowhere'" in failed.output
    assert "bad.yaml:2: extra: unknown setting" in failed.output
    assert "Traceback" not in failed.output


def test_empty_secrets_in_the_environment_mean_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """An env file's `SCHOOLSYNC_GENERIC_SECRET=` must not turn the generic webhooks on with an
    empty HMAC key (anyone could sign), nor an empty admin token open the admin API."""
    from schoolsync.core.settings import Settings

    for name in ("GENERIC_SECRET", "ADMIN_TOKEN", "SENTRY_DSN", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.setenv(f"SCHOOLSYNC_{name}", "")
    monkeypatch.setenv("SCHOOLSYNC_SECRETS__AMOCRM_TOKEN", " ")
    settings = Settings()
    assert settings.generic_secret is None
    assert settings.admin_token is None
    assert settings.sentry_dsn is None
    assert settings.redis_url is None
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.secret("amocrm_token") is None
