"""SheetsClient and ServiceAccountTokens against Sheets and OAuth answers (tests/fixtures/sheets),
with respx."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import ValidationError

from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.connectors.sheets import (
    SCOPE,
    ServiceAccountTokens,
    SheetsAccount,
    SheetsClient,
    column_index,
    column_letters,
    quote_sheet,
    sheet_range,
)
from schoolsync.core.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    UnavailableError,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "sheets"
BASE = "https://sheets.googleapis.com"
TOKEN_URL = "https://oauth2.googleapis.com/token"
EMAIL = "reports@school-project.iam.gserviceaccount.com"
SHEET_ID = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"
VALUES = f"{BASE}/v4/spreadsheets/{SHEET_ID}/values/"
ENDPOINT = Endpoint("sheets", "school")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def google(name: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = fixture(name)
    return httpx.Response(body["error"]["code"], json=body, headers=headers)


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key_file(tmp_path: Path, private_key: rsa.RSAPrivateKey) -> Path:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = tmp_path / "key.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "school-project",
                "private_key_id": "0123456789abcdef",
                "private_key": pem,
                "client_email": EMAIL,
                "client_id": "100000000000000000001",
                "token_uri": TOKEN_URL,
            }
        )
    )
    return path


class Clock:
    def __init__(self) -> None:
        self.now = 1_717_000_000.0

    def __call__(self) -> float:
        return self.now


class RecordingPacer:
    def __init__(self) -> None:
        self.acquired: list[float] = []
        self.penalties: list[float] = []

    def acquire(self, *, max_wait: float) -> None:
        self.acquired.append(max_wait)

    def penalize(self, retry_after: float) -> None:
        self.penalties.append(retry_after)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pacer() -> RecordingPacer:
    return RecordingPacer()


@pytest.fixture
def tokens(key_file: Path, clock: Clock) -> Iterator[ServiceAccountTokens]:
    source = ServiceAccountTokens(key_file, endpoint=ENDPOINT, clock=clock, timeout_s=2)
    yield source
    source.close()


@pytest.fixture
def client(tokens: ServiceAccountTokens, pacer: RecordingPacer) -> Iterator[SheetsClient]:
    http = build_client(BASE, timeout=2)
    yield SheetsClient(http, ENDPOINT, tokens, pacer, pace_max_wait_s=3)
    http.close()


def token_answers(*names: str) -> list[httpx.Response]:
    return [
        httpx.Response(200, json={"access_token": name, "expires_in": 3599, "token_type": "Bearer"})
        for name in names
    ]


def mock_token(*names: str) -> respx.Route:
    return respx.post(TOKEN_URL).mock(side_effect=token_answers(*(names or ("ya29.first",))))


def claims_of(assertion: str, key: rsa.RSAPrivateKey) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWT whose RS256 signature ``key`` verifies."""
    head, body, signature = assertion.split(".")

    def decode(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    key.public_key().verify(
        decode(signature), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return json.loads(decode(head)), json.loads(decode(body))


# -- tokens -----------------------------------------------------------------------------------


@respx.mock
def test_token_exchange_signs_a_jwt_and_caches_the_token(
    client: SheetsClient, private_key: rsa.RSAPrivateKey, clock: Clock
) -> None:
    token_route = mock_token("ya29.first", "ya29.second")
    values = respx.get(url__startswith=VALUES).mock(
        return_value=httpx.Response(200, json=fixture("values_get.json"))
    )
    client.get_values(SHEET_ID, "A1:B2")
    client.get_values(SHEET_ID, "A1:B2")
    assert token_route.call_count == 1
    form = parse_qs(token_route.calls[0].request.content.decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    header, claims = claims_of(form["assertion"][0], private_key)
    assert header["alg"] == "RS256" and header["kid"] == "0123456789abcdef"
    assert claims == {
        "iss": EMAIL,
        "scope": SCOPE,
        "aud": TOKEN_URL,
        "iat": int(clock.now),
        "exp": int(clock.now) + 3600,
    }
    assert [c.request.headers["Authorization"] for c in values.calls] == ["Bearer ya29.first"] * 2

    clock.now += 3599 - 59  # inside the last minute: refreshed before it expires
    client.get_values(SHEET_ID, "A1:B2")
    assert token_route.call_count == 2
    assert values.calls[-1].request.headers["Authorization"] == "Bearer ya29.second"


@respx.mock
def test_a_401_refreshes_the_token_and_retries_once(client: SheetsClient) -> None:
    token_route = mock_token("ya29.stale", "ya29.fresh")
    values = respx.get(url__startswith=VALUES).mock(
        side_effect=[google("error_401.json"), httpx.Response(200, json=fixture("values_get.json"))]
    )
    rows = client.get_values(SHEET_ID, "A:E")
    assert rows[1][2] == "Иванов Петя"
    assert token_route.call_count == 2
    assert [c.request.headers["Authorization"] for c in values.calls] == [
        "Bearer ya29.stale",
        "Bearer ya29.fresh",
    ]


@respx.mock
def test_a_second_401_is_an_auth_error(client: SheetsClient) -> None:
    token_route = mock_token("ya29.one", "ya29.two", "ya29.three")
    values = respx.get(url__startswith=VALUES).mock(return_value=google("error_401.json"))
    with pytest.raises(AuthError) as raised:
        client.get_values(SHEET_ID, "A:E")
    assert values.call_count == 2 and token_route.call_count == 2
    assert raised.value.status == 401
    assert "ya29" not in str(raised.value)


@respx.mock
def test_token_endpoint_refusal_is_an_auth_error_without_the_assertion(
    client: SheetsClient,
) -> None:
    route = respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(400, json=fixture("token_invalid_grant.json"))
    )
    with pytest.raises(AuthError) as raised:
        client.get_values(SHEET_ID, "A:E")
    message = str(raised.value)
    assert "invalid_grant: Invalid JWT Signature." in message
    assertion = parse_qs(route.calls[0].request.content.decode())["assertion"][0]
    assert assertion not in message and assertion.split(".")[2] not in message


@respx.mock
def test_token_endpoint_down_is_retryable(client: SheetsClient) -> None:
    respx.post(TOKEN_URL).mock(return_value=httpx.Response(503, text="unavailable"))
    with pytest.raises(UnavailableError):
        client.get_values(SHEET_ID, "A:E")
    respx.post(TOKEN_URL).mock(side_effect=httpx.ConnectTimeout("slow"))
    with pytest.raises(UnavailableError):
        client.get_values(SHEET_ID, "A:E")


def test_token_url_overrides_the_key_file(key_file: Path, clock: Clock) -> None:
    sandbox = "http://127.0.0.1:8900/sheets/token"
    with respx.mock:
        route = respx.post(sandbox).mock(side_effect=token_answers("ya29.sandbox"))
        source = ServiceAccountTokens(key_file, endpoint=ENDPOINT, token_url=sandbox, clock=clock)
        assert source.token() == "ya29.sandbox"
        source.close()
    assertion = parse_qs(route.calls[0].request.content.decode())["assertion"][0]
    claims = json.loads(base64.urlsafe_b64decode(assertion.split(".")[1] + "=="))
    assert claims["aud"] == sandbox


def test_invalidate_only_drops_the_token_it_names(key_file: Path, clock: Clock) -> None:
    with respx.mock:
        mock_token("ya29.a", "ya29.b")
        source = ServiceAccountTokens(key_file, endpoint=ENDPOINT, clock=clock)
        assert source.token() == "ya29.a"
        source.invalidate("ya29.someone-elses")  # another thread already refreshed
        assert source.token() == "ya29.a"
        source.invalidate("ya29.a")
        assert source.token() == "ya29.b"
        source.close()


# -- the key file -----------------------------------------------------------------------------


def test_the_key_file_is_read_lazily_and_problems_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    source = ServiceAccountTokens(missing, endpoint=ENDPOINT)  # no error yet
    with pytest.raises(ConfigError) as raised:
        source.token()
    assert str(missing) in str(raised.value) and "cannot be read" in str(raised.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json at all -----BEGIN PRIVATE KEY-----", "is not JSON"),
        ('{"type": "service_account", "private_key": "SECRETPEM"}', "client_email"),
        (
            '{"type": "authorized_user", "client_email": "a@b.iam.gserviceaccount.com", '
            '"private_key": "SECRETPEM"}',
            "not a service-account key",
        ),
        (
            '{"type": "service_account", "client_email": "a@b.iam.gserviceaccount.com", '
            '"private_key": "-----BEGIN PRIVATE KEY-----\\nSECRETPEM\\n-----END PRIVATE KEY-----\\n"}',
            "not a usable RSA key",
        ),
    ],
)
def test_a_bad_key_file_is_a_config_error_without_its_content(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "key.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as raised:
        ServiceAccountTokens(path, endpoint=ENDPOINT).token()
    assert problem in str(raised.value)
    assert "SECRETPEM" not in str(raised.value) and "BEGIN" not in str(raised.value)
    assert raised.value.__cause__ is None


# -- errors -----------------------------------------------------------------------------------


@respx.mock
def test_429_is_rate_limited_for_a_minute_and_penalizes_the_pacer(
    client: SheetsClient, pacer: RecordingPacer
) -> None:
    mock_token()
    respx.post(url__startswith=VALUES).mock(return_value=google("error_429.json"))
    with pytest.raises(RateLimitedError) as raised:
        client.append_rows(SHEET_ID, "'Лист1'!A1", [["a"]])
    assert raised.value.retry_after == 60.0
    assert pacer.penalties == [60.0]
    assert "RESOURCE_EXHAUSTED" in str(raised.value)


@respx.mock
def test_429_with_retry_after_uses_it(client: SheetsClient, pacer: RecordingPacer) -> None:
    mock_token()
    respx.get(url__startswith=VALUES).mock(
        return_value=google("error_429.json", headers={"Retry-After": "7"})
    )
    with pytest.raises(RateLimitedError) as raised:
        client.get_values(SHEET_ID, "A:A")
    assert raised.value.retry_after == 7.0
    assert pacer.penalties == [7.0]


@respx.mock
def test_403_says_to_share_the_spreadsheet_with_the_service_account(client: SheetsClient) -> None:
    mock_token()
    respx.get(url__startswith=VALUES).mock(return_value=google("error_403.json"))
    with pytest.raises(AuthError) as raised:
        client.get_values(SHEET_ID, "A:A")
    message = str(raised.value)
    assert f"share spreadsheet {SHEET_ID} with the service account {EMAIL}" in message
    assert "The caller does not have permission" in message
    assert raised.value.status == 403


@respx.mock
def test_404_names_the_spreadsheet(client: SheetsClient) -> None:
    mock_token()
    respx.get(url__startswith=f"{BASE}/v4/spreadsheets/missing-id/").mock(
        return_value=google("error_404.json")
    )
    with pytest.raises(NotFoundError) as raised:
        client.get_values("missing-id", "A:A")
    assert "spreadsheet missing-id" in str(raised.value)


@respx.mock
def test_400_carries_googles_message_masked(client: SheetsClient) -> None:
    mock_token()
    respx.get(url__startswith=VALUES).mock(return_value=google("error_400_range.json"))
    with pytest.raises(RejectedError) as raised:
        client.get_values(SHEET_ID, "'Лист 2'!A:A")
    assert "Unable to parse range: 'Лист 2'!A:A" in str(raised.value)

    body = {
        "error": {
            "code": 400,
            "message": "Invalid value: parent@example.com",
            "status": "INVALID_ARGUMENT",
        }
    }
    respx.get(url__startswith=VALUES).mock(return_value=httpx.Response(400, json=body))
    with pytest.raises(RejectedError) as raised:
        client.get_values(SHEET_ID, "A:A")
    assert "parent@example.com" not in str(raised.value)
    assert "p***@example.com" in str(raised.value)


@respx.mock
def test_5xx_and_timeouts_are_unavailable(client: SheetsClient) -> None:
    mock_token()
    respx.get(url__startswith=VALUES).mock(return_value=httpx.Response(503, json={}))
    with pytest.raises(UnavailableError):
        client.get_values(SHEET_ID, "A:A")
    respx.get(url__startswith=VALUES).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(UnavailableError):
        client.get_values(SHEET_ID, "A:A")


# -- ranges -----------------------------------------------------------------------------------


def test_sheet_names_are_quoted_and_columns_counted() -> None:
    assert quote_sheet("Лист 1") == "'Лист 1'"
    assert quote_sheet("O'Brien") == "'O''Brien'"
    assert sheet_range("Ответы на форму (1)", "A:A") == "'Ответы на форму (1)'!A:A"
    assert sheet_range("Лист1") == "'Лист1'"
    assert [column_index(c) for c in ("A", "Z", "AA", "az")] == [0, 25, 26, 51]
    assert [column_letters(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]
    with pytest.raises(ValueError):
        quote_sheet("")
    with pytest.raises(ValueError):
        column_index("A1")


@respx.mock
def test_ranges_are_percent_encoded_whole_in_the_path(client: SheetsClient) -> None:
    mock_token()
    route = respx.get(url__startswith=VALUES).mock(
        return_value=httpx.Response(200, json=fixture("values_get_empty.json"))
    )
    assert client.get_values(SHEET_ID, sheet_range("O'Brien / Лист 1", "A:A")) == []
    url = route.calls[0].request.url
    raw = url.raw_path.decode()
    assert raw.startswith(f"/v4/spreadsheets/{SHEET_ID}/values/%27O%27%27Brien%20%2F%20")
    assert "%21A%3AA?" in raw and "!" not in raw and "'" not in raw
    assert url.params["valueRenderOption"] == "FORMATTED_VALUE"


# -- values -----------------------------------------------------------------------------------


@respx.mock
def test_get_values_reads_formatted_strings(client: SheetsClient, pacer: RecordingPacer) -> None:
    mock_token()
    respx.get(url__startswith=VALUES).mock(
        return_value=httpx.Response(200, json=fixture("values_get.json"))
    )
    rows = client.get_values(SHEET_ID, sheet_range("Ответы на форму (1)"))
    assert rows[0][0] == "Отметка времени"
    assert rows[2] == []
    assert rows[3] == ["13.05.2024 09:15:40", "mama@example.org", "Сидорова Аня", "10"]
    assert pacer.acquired == [3]


@respx.mock
def test_append_rows_inserts_raw_rows(client: SheetsClient) -> None:
    mock_token()
    route = respx.post(url__startswith=VALUES).mock(
        return_value=httpx.Response(200, json=fixture("values_append.json"))
    )
    result = client.append_rows(SHEET_ID, "'Лист1'!A1", [["k1", "=1+1"], ["k2", "00123"]])
    assert result.updated_range == "'Лист1'!A13:E14"
    assert result.updated_rows == 2
    assert result.table_range == "'Лист1'!A1:E12"
    request = route.calls[0].request
    assert (
        request.url.raw_path.decode()
        .split("?")[0]
        .endswith("/values/%27%D0%9B%D0%B8%D1%81%D1%821%27%21A1:append")
    )
    assert dict(request.url.params) == {
        "valueInputOption": "RAW",
        "insertDataOption": "INSERT_ROWS",
    }
    assert json.loads(request.content) == {
        "range": "'Лист1'!A1",
        "majorDimension": "ROWS",
        "values": [["k1", "=1+1"], ["k2", "00123"]],
    }


@respx.mock
def test_append_to_an_empty_sheet_has_no_table_range(client: SheetsClient) -> None:
    mock_token()
    respx.post(url__startswith=VALUES).mock(
        return_value=httpx.Response(200, json=fixture("values_append_empty_sheet.json"))
    )
    result = client.append_rows(SHEET_ID, "'Лист1'!A1", [["a", "b", "c"]])
    assert (result.table_range, result.updated_range) == ("", "'Лист1'!A1:C1")


@respx.mock
def test_append_unique_appends_only_keys_not_yet_in_the_sheet(client: SheetsClient) -> None:
    mock_token()
    column = {
        "range": "'Лист1'!A1:A1000",
        "majorDimension": "ROWS",
        "values": [["Ключ"], ["k1"], [], ["k3"]],
    }
    read = respx.get(url__startswith=VALUES).mock(return_value=httpx.Response(200, json=column))
    append = respx.post(url__startswith=VALUES).mock(
        return_value=httpx.Response(200, json=fixture("values_append.json"))
    )
    rows = [["k1", "old"], ["k2", "new"], ["k3", "old"], ["k2", "repeat"], ["k4", "new"]]
    assert client.append_unique(SHEET_ID, "Лист1", rows) is not None
    assert read.calls[0].request.url.path.endswith("/values/'Лист1'!A:A")
    assert json.loads(append.calls[0].request.content)["values"] == [["k2", "new"], ["k4", "new"]]
    assert append.calls[0].request.url.path.endswith("/values/'Лист1'!A1:append")

    assert client.append_unique(SHEET_ID, "Лист1", [["k1", "x"], ["k3", "y"]]) is None
    assert append.call_count == 1


@respx.mock
def test_append_unique_reads_the_key_column_it_is_given(client: SheetsClient) -> None:
    mock_token()
    read = respx.get(url__startswith=VALUES).mock(
        return_value=httpx.Response(200, json={"range": "'Лист1'!C1:C1000", "values": [["k1"]]})
    )
    respx.post(url__startswith=VALUES).mock(
        return_value=httpx.Response(200, json=fixture("values_append.json"))
    )
    client.append_unique(SHEET_ID, "Лист1", [["a", "b", "k1"], ["a", "b", "k2"]], key_column="C")
    assert read.calls[0].request.url.path.endswith("'Лист1'!C:C")
    with pytest.raises(ValueError, match="column C"):
        client.append_unique(SHEET_ID, "Лист1", [["a", "b"]], key_column="C")


@respx.mock
def test_upsert_row_updates_the_row_holding_the_key(client: SheetsClient) -> None:
    mock_token()
    column = {
        "range": "'Отчёт'!A1:A1000",
        "values": [["Дата"], [], ["2024-05-01"], [], [], [], ["2024-05-06"]],
    }
    respx.get(url__startswith=VALUES).mock(return_value=httpx.Response(200, json=column))
    put = respx.put(url__startswith=VALUES).mock(
        return_value=httpx.Response(200, json=fixture("values_update.json"))
    )
    result = client.upsert_row(SHEET_ID, "Отчёт", "2024-05-06", ["2024-05-06", "12", "3", "95%"])
    assert (result.row, result.created) == (7, False)
    request = put.calls[0].request
    assert request.url.path.endswith("/values/'Отчёт'!A7:D7")
    assert request.url.params["valueInputOption"] == "RAW"
    assert json.loads(request.content)["values"] == [["2024-05-06", "12", "3", "95%"]]


@respx.mock
def test_upsert_row_appends_a_new_key(client: SheetsClient) -> None:
    mock_token()
    respx.get(url__startswith=VALUES).mock(
        return_value=httpx.Response(200, json={"range": "'Отчёт'!A1:A1000", "values": [["Дата"]]})
    )
    append = respx.post(url__startswith=VALUES).mock(
        return_value=httpx.Response(200, json=fixture("values_append.json"))
    )
    result = client.upsert_row(SHEET_ID, "Отчёт", "2024-05-07", ["2024-05-07", "1"])
    assert (result.row, result.created) == (13, True)
    assert json.loads(append.calls[0].request.content)["values"] == [["2024-05-07", "1"]]
    with pytest.raises(ValueError):
        client.upsert_row(SHEET_ID, "Отчёт", "2024-05-08", ["2024-05-07", "1"])


@respx.mock
def test_batch_update_values(client: SheetsClient) -> None:
    mock_token()
    route = respx.post(f"{BASE}/v4/spreadsheets/{SHEET_ID}/values:batchUpdate").mock(
        return_value=httpx.Response(200, json=fixture("values_batch_update.json"))
    )
    result = client.batch_update_values(
        SHEET_ID, [("'Отчёт'!B2", [["5"]]), ("'Отчёт'!A5:C6", [["a", "b", "c"], ["d"]])]
    )
    assert result.total_updated_cells == 5 and len(result.responses) == 2
    assert json.loads(route.calls[0].request.content) == {
        "valueInputOption": "RAW",
        "data": [
            {"range": "'Отчёт'!B2", "majorDimension": "ROWS", "values": [["5"]]},
            {
                "range": "'Отчёт'!A5:C6",
                "majorDimension": "ROWS",
                "values": [["a", "b", "c"], ["d"]],
            },
        ],
    }
    assert client.batch_update_values(SHEET_ID, []).total_updated_cells == 0
    assert route.call_count == 1


@respx.mock
def test_update_values_puts_raw(client: SheetsClient) -> None:
    mock_token()
    put = respx.put(url__startswith=VALUES).mock(
        return_value=httpx.Response(200, json=fixture("values_update.json"))
    )
    result = client.update_values(SHEET_ID, "'Отчёт'!A7:D7", [["a", "b", "c", "d"]])
    assert result.updated_cells == 4
    assert put.calls[0].request.url.params["valueInputOption"] == "RAW"


@respx.mock
def test_a_2xx_that_is_not_json_is_rejected(client: SheetsClient) -> None:
    mock_token()
    respx.get(url__startswith=VALUES).mock(return_value=httpx.Response(200, text="<html>"))
    with pytest.raises(RejectedError):
        client.get_values(SHEET_ID, "A:A")


# -- config -----------------------------------------------------------------------------------


def test_account_config(tmp_path: Path) -> None:
    account = SheetsAccount(account="school", key_file=tmp_path / "key.json")
    assert account.base_url == BASE and account.endpoint == ENDPOINT
    assert account.rate_per_s == 1.0
    sandbox = SheetsAccount(
        account="school",
        key_file=tmp_path / "key.json",
        base_url="http://127.0.0.1:8900/sheets/",
        token_url="http://127.0.0.1:8900/sheets/token",
    )
    assert sandbox.base_url == "http://127.0.0.1:8900/sheets"
    for bad in (
        {"base_url": "http://sheets.example.com"},
        {"base_url": "https://sheets.googleapis.com/v4"},
        {"token_url": "http://oauth.example.com/token"},
        {"key": "inline"},
        {"per_minute": 0},
    ):
        with pytest.raises(ValidationError):
            SheetsAccount.model_validate({"account": "school", "key_file": "k.json", **bad})
