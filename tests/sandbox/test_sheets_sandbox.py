"""The Sheets sandbox answers as Google does for what our connector relies on (service-account
tokens, values get/update/append/batchUpdate, sharing, quotas, faults), and our SheetsClient
works against it end to end."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from schoolsync.connectors.http import build_client
from schoolsync.connectors.sheets import (
    ServiceAccountTokens,
    SheetsAccount,
    SheetsClient,
    sheet_range,
)
from schoolsync.core.errors import AuthError, RateLimitedError, UnavailableError
from schoolsync.sandbox.server import create_app as server_app
from schoolsync.sandbox.sheets import SheetsSandboxConfig, create_app
from tests.conftest import serving

ACCOUNT = "sandbox@schoolsync-sandbox.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/spreadsheets"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FEEDBACK = "sandbox-feedback"
FORM_TAB = "Ответы на форму (1)"
VALUES = f"/sheets/v4/spreadsheets/{FEEDBACK}/values"
HEADER = [
    "Отметка времени",
    "Адрес электронной почты",
    "ФИО ребенка",
    "Оценка (0–10)",
    "Комментарий",
]


def mounted(config: SheetsSandboxConfig | None = None) -> Starlette:
    return Starlette(routes=[Mount("/sheets", app=create_app(config))])


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(mounted(), base_url="http://127.0.0.1:8900") as test_client:
        yield test_client


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion(private_pem: str, claims: dict[str, Any], kid: str | None = None) -> str:
    """An RS256 JWT signed with cryptography itself (not the library our connector uses)."""
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    header = {"alg": "RS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def claims(aud: str = "http://127.0.0.1:8900/sheets/token", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ACCOUNT, "scope": SCOPE, "aud": aud, "iat": now, "exp": now + 3600, **extra}


def key_file(client: TestClient) -> dict[str, str]:
    response = client.get("/sheets/_sandbox/key-file")
    assert response.status_code == 200
    return dict(response.json())


def exchange(client: TestClient, jwt: str, grant_type: str = GRANT) -> httpx.Response:
    return client.post("/sheets/token", data={"grant_type": grant_type, "assertion": jwt})


def bearer(client: TestClient) -> dict[str, str]:
    key = key_file(client)
    answer = exchange(client, assertion(key["private_key"], claims(), key["private_key_id"]))
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def quoted(range_a1: str) -> str:
    return quote(range_a1, safe="")


# -- the key file and the token endpoint ------------------------------------------------------


def test_key_file_is_a_complete_service_account_key_pointing_at_the_sandbox(
    client: TestClient,
) -> None:
    key = key_file(client)
    assert key["type"] == "service_account"
    assert key["client_email"] == ACCOUNT
    assert key["token_uri"] == "http://127.0.0.1:8900/sheets/token"
    assert key["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert len(key["private_key_id"]) == 40 and key["client_id"].isdigit()
    assert key["project_id"] == "schoolsync-sandbox"
    assert key_file(client) == key  # one key pair per sandbox


def test_token_exchange_answers_like_google(client: TestClient) -> None:
    key = key_file(client)
    answer = exchange(client, assertion(key["private_key"], claims(), key["private_key_id"]))
    assert answer.status_code == 200
    body = answer.json()
    assert body["expires_in"] == 3599 and body["token_type"] == "Bearer"
    assert body["access_token"].startswith("ya29.")
    # localhost names the same sandbox as 127.0.0.1
    aud = "http://localhost:8900/sheets/token"
    assert exchange(client, assertion(key["private_key"], claims(aud=aud))).status_code == 200


def test_token_refusals_are_googles(client: TestClient) -> None:
    key = key_file(client)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    now = int(time.time())
    cases = [
        (assertion(other_pem, claims()), "invalid_grant", "Invalid JWT Signature."),
        (
            assertion(key["private_key"], claims(aud="https://oauth2.googleapis.com/token")),
            "invalid_grant",
            "audience",
        ),
        (assertion(key["private_key"], claims(exp=now + 7200)), "invalid_grant", "short-lived"),
        (
            assertion(key["private_key"], claims(iat=now - 7200, exp=now - 3600)),
            "invalid_grant",
            "short-lived",
        ),
        (
            assertion(key["private_key"], claims(iss="nobody@x.iam.gserviceaccount.com")),
            "invalid_grant",
            "account not found",
        ),
        (assertion(key["private_key"], claims(scope="")), "invalid_scope", "scope"),
        ("not.a.jwt", "invalid_grant", "Invalid JWT"),
    ]
    for jwt, error, words in cases:
        answer = exchange(client, jwt)
        assert answer.status_code == 400, (error, words)
        assert answer.json()["error"] == error
        assert words in answer.json()["error_description"]
    wrong_grant = exchange(client, assertion(key["private_key"], claims()), grant_type="password")
    assert wrong_grant.json()["error"] == "unsupported_grant_type"
    assert client.get("/sheets/_sandbox/state").json()["token_refusals"] == len(cases) + 1


def test_extra_accounts_sign_with_their_own_keys() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    email = "other@school-project.iam.gserviceaccount.com"
    config = SheetsSandboxConfig(extra_accounts={email: public})
    with TestClient(mounted(config), base_url="http://127.0.0.1:8900") as client:
        answer = exchange(client, assertion(private, claims(iss=email)))
        assert answer.status_code == 200
        headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        # a spreadsheet not shared with this account
        denied = client.get(f"{VALUES}/A1", headers=headers)
        assert denied.status_code == 403
        assert denied.json()["error"]["status"] == "PERMISSION_DENIED"


# -- the values API ---------------------------------------------------------------------------


def test_values_need_a_valid_bearer_token(client: TestClient) -> None:
    missing = client.get(f"{VALUES}/A1")
    assert missing.status_code == 401
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    assert "missing required authentication credential" in missing.json()["error"]["message"]
    wrong = client.get(f"{VALUES}/A1", headers={"Authorization": "Bearer ya29.made-up"})
    assert wrong.status_code == 401
    assert "invalid authentication credentials" in wrong.json()["error"]["message"]


def test_unknown_spreadsheet_bad_range_and_missing_input_option(client: TestClient) -> None:
    headers = bearer(client)
    missing = client.get("/sheets/v4/spreadsheets/nope/values/A1", headers=headers)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}
    }
    bad = client.get(f"{VALUES}/{quoted(sheet_range('Лист 2', 'A:A'))}", headers=headers)
    assert bad.status_code == 400
    assert bad.json()["error"] == {
        "code": 400,
        "message": "Unable to parse range: 'Лист 2'!A:A",
        "status": "INVALID_ARGUMENT",
    }
    no_option = client.put(f"{VALUES}/A1", headers=headers, json={"values": [["x"]]})
    assert no_option.status_code == 400
    assert (
        no_option.json()["error"]["message"] == "'valueInputOption' is required but not specified"
    )
    mismatch = client.put(
        f"{VALUES}/A1?valueInputOption=RAW",
        headers=headers,
        json={"range": "B1", "values": [["x"]]},
    )
    assert (
        mismatch.json()["error"]["message"] == "Request range[A1] does not match value's range[B1]"
    )


def test_get_omits_trailing_empty_cells_and_rows(client: TestClient) -> None:
    headers = bearer(client)
    client.post(
        f"/sheets/_sandbox/spreadsheets/{FEEDBACK}/rows",
        json={"rows": [["t1", "a@example.com", "Петя", "9", ""], ["", "", "", "", ""]]},
    )
    whole = client.get(f"{VALUES}/{quoted(FORM_TAB)}", headers=headers).json()
    assert whole["range"] == "'Ответы на форму (1)'!A1:Z1002"  # two form rows inserted
    assert whole["majorDimension"] == "ROWS"
    assert whole["values"] == [HEADER, ["t1", "a@example.com", "Петя", "9"]]
    empty = client.get(f"{VALUES}/{quoted(sheet_range(FORM_TAB, 'F:F'))}", headers=headers).json()
    assert empty == {"range": "'Ответы на форму (1)'!F1:F1002", "majorDimension": "ROWS"}


def test_append_finds_the_table_and_raw_keeps_text(client: TestClient) -> None:
    headers = bearer(client)
    path = f"{VALUES}/{quoted(sheet_range(FORM_TAB, 'A1'))}:append"
    body = {"values": [["k1", "=1+1", "00123", 5, True]]}
    answer = client.post(
        path,
        params={"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
        headers=headers,
        json=body,
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "spreadsheetId": FEEDBACK,
        "tableRange": "'Ответы на форму (1)'!A1:E1",
        "updates": {
            "spreadsheetId": FEEDBACK,
            "updatedRange": "'Ответы на форму (1)'!A2:E2",
            "updatedRows": 1,
            "updatedColumns": 5,
            "updatedCells": 5,
        },
    }
    entered = client.post(
        path,
        params={"valueInputOption": "USER_ENTERED"},
        headers=headers,
        json={"values": [["k2", "00123", "true"]]},
    )
    assert entered.json()["updates"]["updatedRange"] == "'Ответы на форму (1)'!A3:C3"
    shown = client.get(f"{VALUES}/{quoted(sheet_range(FORM_TAB, 'A2:E3'))}", headers=headers).json()
    assert shown["values"] == [["k1", "=1+1", "00123", "5", "TRUE"], ["k2", "123", "TRUE"]]
    raw = client.get(
        f"{VALUES}/{quoted(sheet_range(FORM_TAB, 'A2:E3'))}",
        params={"valueRenderOption": "UNFORMATTED_VALUE"},
        headers=headers,
    ).json()
    assert raw["values"] == [["k1", "=1+1", "00123", 5, True], ["k2", 123, True]]


def test_append_to_an_empty_sheet_has_no_table_range(client: TestClient) -> None:
    headers = bearer(client)
    answer = client.post(
        f"/sheets/v4/spreadsheets/sandbox-reports/values/{quoted(sheet_range('Лист1', 'A1'))}:append",
        params={"valueInputOption": "RAW"},
        headers=headers,
        json={"values": [["a", "b"]]},
    ).json()
    assert "tableRange" not in answer
    assert answer["updates"]["updatedRange"] == "'Лист1'!A1:B1"


def test_update_must_fit_its_range_and_the_grid(client: TestClient) -> None:
    headers = bearer(client)
    url = f"/sheets/v4/spreadsheets/sandbox-reports/values/{quoted(sheet_range('Лист1', 'A1:B1'))}"
    too_many = client.put(
        url, params={"valueInputOption": "RAW"}, headers=headers, json={"values": [["a"], ["b"]]}
    )
    assert too_many.status_code == 400
    assert "tried writing to row [2]" in too_many.json()["error"]["message"]
    beyond = client.put(
        f"/sheets/v4/spreadsheets/sandbox-reports/values/{quoted(sheet_range('Лист1', 'A1001'))}",
        params={"valueInputOption": "RAW"},
        headers=headers,
        json={"values": [["a"]]},
    )
    assert "exceeds grid limits" in beyond.json()["error"]["message"]
    anchor = client.put(
        f"/sheets/v4/spreadsheets/sandbox-reports/values/{quoted(sheet_range('Лист1', 'B2'))}",
        params={"valueInputOption": "RAW"},
        headers=headers,
        json={"values": [["a", "b"], ["c"]]},
    )
    assert anchor.json()["updatedRange"] == "'Лист1'!B2:C3"
    assert anchor.json()["updatedCells"] == 3


def test_batch_update_is_atomic(client: TestClient) -> None:
    headers = bearer(client)
    url = "/sheets/v4/spreadsheets/sandbox-reports/values:batchUpdate"
    data = [
        {"range": "'Лист1'!A1", "values": [["ok"]]},
        {"range": "'Нет такого'!A1", "values": [["bad"]]},
    ]
    failed = client.post(url, headers=headers, json={"valueInputOption": "RAW", "data": data})
    assert failed.status_code == 400
    assert (
        failed.json()["error"]["message"]
        == "Invalid data[1]: Unable to parse range: 'Нет такого'!A1"
    )
    assert client.get("/sheets/_sandbox/spreadsheets/sandbox-reports").json()["tabs"]["Лист1"] == []
    done = client.post(url, headers=headers, json={"valueInputOption": "RAW", "data": data[:1]})
    assert done.json()["totalUpdatedCells"] == 1
    assert done.json()["responses"][0]["updatedRange"] == "'Лист1'!A1"


# -- control, quotas, faults ------------------------------------------------------------------


def test_control_creates_spreadsheets_takes_form_rows_and_resets(client: TestClient) -> None:
    default = client.get(f"/sheets/_sandbox/spreadsheets/{FEEDBACK}").json()
    assert default["tabs"] == {FORM_TAB: [HEADER]}
    assert default["shared_with"] == [ACCOUNT]
    made = client.post(
        "/sheets/_sandbox/spreadsheets",
        json={
            "id": "private",
            "tabs": {"Лист1": [["a"]], "Итоги": []},
            "shared_with": ["someone@example.com"],
        },
    )
    assert made.status_code == 200
    headers = bearer(client)
    assert (
        client.get("/sheets/v4/spreadsheets/private/values/A1", headers=headers).status_code == 403
    )
    added = client.post(
        f"/sheets/_sandbox/spreadsheets/{FEEDBACK}/rows",
        json={"tab": FORM_TAB, "rows": [["t", "e", "n", "8", "c"]]},
    )
    assert added.json() == {"tab": FORM_TAB, "first_row": 2, "rows": 1}
    state = client.get("/sheets/_sandbox/state").json()
    assert state["spreadsheets"][FEEDBACK] == {FORM_TAB: 2}
    assert state["tokens_issued"] == 1 and state["errors"] == 1
    client.post("/sheets/_sandbox/reset")
    state = client.get("/sheets/_sandbox/state").json()
    assert state["spreadsheets"] == {FEEDBACK: {FORM_TAB: 1}, "sandbox-reports": {"Лист1": 0}}
    assert state["requests"] == 0
    assert client.get(f"{VALUES}/A1", headers=headers).status_code == 200  # tokens survive


def test_quota_per_minute_answers_429(client: TestClient) -> None:
    headers = bearer(client)
    client.post("/sheets/_sandbox/limits", json={"per_minute": 2})
    codes = [client.get(f"{VALUES}/A1", headers=headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = client.get(f"{VALUES}/A1", headers=headers)
    assert refused.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "per minute per user" in refused.json()["error"]["message"]
    assert "Retry-After" not in refused.headers
    # writes have their own quota
    write = client.put(
        f"{VALUES}/F1?valueInputOption=RAW", headers=headers, json={"values": [["x"]]}
    )
    assert write.status_code == 200
    assert client.get("/sheets/_sandbox/state").json()["rate_limited"] == 2


def test_faults_answer_errors_and_timeouts_without_writing(client: TestClient) -> None:
    headers = bearer(client)
    client.post(
        "/sheets/_sandbox/faults",
        json={"method": "values.get", "error_rate": 1, "status": 503, "seed": 1},
    )
    failed = client.get(f"{VALUES}/A1", headers=headers)
    assert failed.status_code == 503 and failed.json()["error"]["status"] == "UNAVAILABLE"
    client.post(
        "/sheets/_sandbox/faults",
        json={
            "method": "values.update",
            "timeout_rate": 1,
            "timeout_s": 0,
            "apply_on_timeout": False,
        },
    )
    lost = client.put(
        f"{VALUES}/F1?valueInputOption=RAW", headers=headers, json={"values": [["x"]]}
    )
    assert lost.status_code == 504
    assert client.get(f"/sheets/_sandbox/spreadsheets/{FEEDBACK}").json()["tabs"][FORM_TAB] == [
        HEADER
    ]
    client.delete("/sheets/_sandbox/faults")
    assert client.get(f"{VALUES}/A1", headers=headers).status_code == 200
    assert client.get("/sheets/_sandbox/state").json()["faults"] == 2


def test_the_server_mounts_sheets() -> None:
    with TestClient(server_app()) as client:
        assert client.get("/").json()["sandboxes"]["sheets"] == "/sheets"
        assert client.get("/sheets/_sandbox/state").status_code == 200


# -- our client against the sandbox -----------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, SheetsClient, ServiceAccountTokens]]:
    """The sandbox server on loopback and our client set up from a downloaded key file."""
    with serving(server_app()) as base_url:
        path = tmp_path / "sheets-key.json"
        path.write_text(httpx.get(f"{base_url}/sheets/_sandbox/key-file").text)
        account = SheetsAccount(
            account="school", base_url=f"{base_url}/sheets", key_file=path, timeout_s=0.5
        )
        tokens = ServiceAccountTokens(account.key_file, endpoint=account.endpoint, timeout_s=5)
        http = build_client(account.base_url, timeout=account.timeout_s)
        yield base_url, SheetsClient(http, account.endpoint, tokens), tokens
        http.close()
        tokens.close()


def sandbox_rows(base_url: str, spreadsheet: str, tab: str) -> list[list[Any]]:
    book = httpx.get(f"{base_url}/sheets/_sandbox/spreadsheets/{spreadsheet}").json()
    return list(book["tabs"][tab])


def test_client_end_to_end(served: tuple[str, SheetsClient, ServiceAccountTokens]) -> None:
    base_url, client, tokens = served
    assert tokens.client_email == ACCOUNT
    httpx.post(
        f"{base_url}/sheets/_sandbox/spreadsheets/{FEEDBACK}/rows",
        json={
            "rows": [["12.05.2024 18:03:11", "parent@example.com", "Иванов Петя", "9", "=спасибо"]]
        },
    )
    answers = client.get_values(FEEDBACK, sheet_range(FORM_TAB, "A:E"))
    assert answers == [
        HEADER,
        ["12.05.2024 18:03:11", "parent@example.com", "Иванов Петя", "9", "=спасибо"],
    ]

    appended = client.append_rows(FEEDBACK, sheet_range(FORM_TAB, "A1"), [["k1", "x"]])
    assert appended.updated_range == "'Ответы на форму (1)'!A3:B3"
    assert appended.table_range == "'Ответы на форму (1)'!A1:E2"

    first = client.upsert_row("sandbox-reports", "Лист1", "2024-05-06", ["2024-05-06", "12"])
    again = client.upsert_row("sandbox-reports", "Лист1", "2024-05-06", ["2024-05-06", "13", "95%"])
    other = client.upsert_row("sandbox-reports", "Лист1", "2024-05-07", ["2024-05-07", "1"])
    assert (first.row, first.created, again.row, again.created, other.row) == (1, True, 1, False, 2)
    batch = client.batch_update_values(
        "sandbox-reports",
        [(sheet_range("Лист1", "D1"), [["ok"]]), (sheet_range("Лист1", "A4:B4"), [["a", "b"]])],
    )
    assert batch.total_updated_cells == 3
    assert sandbox_rows(base_url, "sandbox-reports", "Лист1") == [
        ["2024-05-06", "13", "95%", "ok"],
        ["2024-05-07", "1"],
        [],
        ["a", "b"],
    ]
    state = httpx.get(f"{base_url}/sheets/_sandbox/state").json()
    assert state["tokens_issued"] == 1

    # a revoked token: refreshed once, transparently
    httpx.post(f"{base_url}/sheets/_sandbox/tokens/revoke")
    assert client.get_values("sandbox-reports", sheet_range("Лист1", "A1")) == [["2024-05-06"]]
    assert httpx.get(f"{base_url}/sheets/_sandbox/state").json()["tokens_issued"] == 2


def test_append_unique_after_a_lost_reply_writes_once(
    served: tuple[str, SheetsClient, ServiceAccountTokens],
) -> None:
    base_url, client, _ = served
    rows = [["gc-30046", "Петя", "9"], ["gc-30047", "Аня", "10"]]
    # the append happens, its reply never comes back (client timeout 0.5 s)
    httpx.post(
        f"{base_url}/sheets/_sandbox/faults",
        json={
            "method": "values.append",
            "timeout_rate": 1,
            "timeout_s": 1.0,
            "apply_on_timeout": True,
            "times": 1,
        },
    )
    with pytest.raises(UnavailableError):
        client.append_unique("sandbox-reports", "Лист1", rows)
    assert len(sandbox_rows(base_url, "sandbox-reports", "Лист1")) == 2

    # the job's retry: the keys are found, nothing is appended
    assert client.append_unique("sandbox-reports", "Лист1", rows) is None
    more = client.append_unique("sandbox-reports", "Лист1", [*rows, ["gc-30048", "Оля", "7"]])
    assert more is not None and more.updated_range == "'Лист1'!A3:C3"
    assert [r[0] for r in sandbox_rows(base_url, "sandbox-reports", "Лист1")] == [
        "gc-30046",
        "gc-30047",
        "gc-30048",
    ]


def test_quota_exceeded_is_rate_limited(
    served: tuple[str, SheetsClient, ServiceAccountTokens],
) -> None:
    base_url, client, _ = served
    httpx.post(f"{base_url}/sheets/_sandbox/limits", json={"per_minute": 3})
    with pytest.raises(RateLimitedError) as raised:
        for _ in range(4):
            client.get_values(FEEDBACK, sheet_range(FORM_TAB, "A1"))
    assert raised.value.retry_after == 60.0
    assert "Read requests per minute per user" in str(raised.value)


def test_not_shared_names_the_service_account(
    served: tuple[str, SheetsClient, ServiceAccountTokens],
) -> None:
    base_url, client, _ = served
    httpx.post(
        f"{base_url}/sheets/_sandbox/spreadsheets",
        json={"id": "private", "tabs": {"Лист1": []}, "shared_with": ["teacher@example.com"]},
    )
    with pytest.raises(AuthError) as raised:
        client.get_values("private", sheet_range("Лист1", "A:A"))
    assert f"share spreadsheet private with the service account {ACCOUNT}" in str(raised.value)


def test_a1_ranges_the_sandbox_reads() -> None:
    from schoolsync.sandbox.sheets.a1 import RangeError, parse_cells, split_sheet

    assert split_sheet("'O''Brien'!A1") == ("O'Brien", "A1")
    assert split_sheet("Class Data!A2:E") == ("Class Data", "A2:E")
    assert split_sheet("'Лист 1'") == ("Лист 1", None)
    assert split_sheet("A1:B2") == (None, "A1:B2")
    whole_rows = parse_cells("2:4", "S")
    assert (whole_rows.row0, whole_rows.row1, whole_rows.col0, whole_rows.col1) == (1, 4, 0, None)
    open_end = parse_cells("A5:E", "S")
    assert (open_end.row0, open_end.row1, open_end.col0, open_end.col1) == (4, None, 0, 5)
    reversed_box = parse_cells("B2:A1", "S")
    assert (reversed_box.row0, reversed_box.row1, reversed_box.col0, reversed_box.col1) == (
        0,
        2,
        0,
        2,
    )
    assert parse_cells("C3", "S").single
    for bad in ("A", "A1:B2:C3", "1:B2", "A0", "A1:", "$A$1"):
        with pytest.raises(RangeError):
            parse_cells(bad, "S")
    with pytest.raises(RangeError):
        split_sheet("'unterminated!A1")


def test_reads_past_the_grid_are_refused_and_append_grows_it(client: TestClient) -> None:
    headers = bearer(client)
    reports = "/sheets/v4/spreadsheets/sandbox-reports/values"
    for past in ("A5:ZZ", "A1001:E", "A1:A1001", "AA1"):
        refused = client.get(f"{reports}/{quoted(sheet_range('Лист1', past))}", headers=headers)
        assert refused.status_code == 400, past
        assert refused.json()["error"]["message"] == (
            f"Range ('Лист1'!{past}) exceeds grid limits. Max rows: 1000, max columns: 26"
        )
    for inside in ("A:Z", "1:1", "A5:E", "Z1000"):
        assert (
            client.get(
                f"{reports}/{quoted(sheet_range('Лист1', inside))}", headers=headers
            ).status_code
            == 200
        )
    wide = [[str(i) for i in range(30)]]
    appended = client.post(
        f"{reports}/{quoted(sheet_range('Лист1', 'A1'))}:append",
        params={"valueInputOption": "RAW"},
        headers=headers,
        json={"values": wide},
    )
    assert appended.json()["updates"]["updatedRange"] == "'Лист1'!A1:AD1"
    assert client.get("/sheets/_sandbox/spreadsheets/sandbox-reports").json()["grid"]["Лист1"] == [
        1000,
        30,
    ]
