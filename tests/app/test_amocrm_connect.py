"""`schoolsync amocrm connect`: the code from amoCRM becomes a stored token pair (the amoCRM
sandbox on loopback, a real Redis, the CLI as a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from schoolsync.core.db import Database
from schoolsync.core.stores import credentials
from schoolsync.sandbox.amocrm import AmoSandboxConfig, create_app
from tests.conftest import RedisServer, serving


def _cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "schoolsync", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_connect_stores_the_pair_and_a_bad_code_is_a_clear_error(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    sandbox = AmoSandboxConfig()
    with serving(create_app(sandbox)) as base_url:
        (tmp_path / "schoolsync.yaml").write_text(
            f"""
accounts:
  amocrm:
    account: main
    base_url: {base_url}
    client_id: {sandbox.client_id}
    redirect_uri: {sandbox.redirect_uri}
    client_secret_env: amo_secret
""",
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLSYNC_")}
        env.update(
            SCHOOLSYNC_CONFIG=str(tmp_path / "schoolsync.yaml"),
            SCHOOLSYNC_DATA_DIR=str(tmp_path / "var"),
            SCHOOLSYNC_REDIS_URL=redis_server.url,
            SCHOOLSYNC_SECRETS__AMO_SECRET=sandbox.client_secret,
            SCHOOLSYNC_SANDBOX="false",
            COLUMNS="200",
        )
        assert _cli(tmp_path, env, "migrate").returncode == 0
        code = httpx.post(f"{base_url}/_sandbox/oauth/code").json()["code"]

        done = _cli(tmp_path, env, "amocrm", "connect", "--code", code)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "connected: school 'default', account 'main'" in done.stdout

        db = Database(f"sqlite:///{tmp_path / 'var' / 'schoolsync.db'}")
        with db.read() as conn:
            stored = credentials.get(conn, "default", "amocrm", "main")
        db.dispose()
        assert stored is not None
        assert stored.data["access_token"] and stored.data["refresh_token"]
        # the tokens are stored, never printed
        assert stored.data["access_token"] not in done.stdout + done.stderr

        again = _cli(tmp_path, env, "amocrm", "connect", "--code", code)  # a code works once
        assert again.returncode == 1
        assert "amoCRM refused the code" in again.stderr
        assert "Traceback" not in again.stderr
        assert httpx.get(f"{base_url}/_sandbox/state").json()["codes_exchanged"] == 1
