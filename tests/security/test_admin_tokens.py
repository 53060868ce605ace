"""Admin tokens from the outside: every ``/admin/api`` route of the OpenAPI document and every
``/admin/`` page refuses a request without a token, with a wrong one, with one that differs
from a real token in one character, is a prefix of it, or is it in another scheme; a viewer
is refused every action. Behaviour only: how tokens are compared is not looked at.

The app and its rows (failures 1-4, inbox rows 1-2, reconciliation item 1, and bulk replay 1
made below) are those of ``tests/app/test_admin_api.py``; its tokens too: the legacy single
token (operator ``admin``), an operator and a viewer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schoolsync.app.bootstrap import Runtime
from schoolsync.app.web.admin_pages import CSRF_COOKIE, SESSION_COOKIE, csrf_token, pages_router
from schoolsync.app.web.app import FastPath, create_app
from schoolsync.core.db.tables import failures
from tests.app.test_admin_api import LEGACY, OPERATOR, VIEWER

TOKENS = {"legacy": LEGACY, "operator": OPERATOR, "viewer": VIEWER}
SIGN_IN = "/admin/login"
# a body each action accepts, so that what answers is the token check, not validation;
# a route missing here fails test_every_action_has_a_body_here
BODIES: dict[tuple[str, str], dict[str, Any] | None] = {
    ("POST", "/admin/api/failures/{failure_id}/replay"): None,
    ("POST", "/admin/api/failures/{failure_id}/resolve"): {"comment": "fixed by hand"},
    ("POST", "/admin/api/failures/{failure_id}/ignore"): {"comment": "test order"},
    ("POST", "/admin/api/failures/bulk-replay"): {"dry_run": False},
    ("POST", "/admin/api/bulk-replays/{bulk_id}/cancel"): None,
    ("POST", "/admin/api/inbox/{inbox_id}/replay"): None,
    ("POST", "/admin/api/reconcile/{item_id}/resolve"): {"not_ours": True},
    ("POST", "/admin/api/feedback"): {"text": "хорошо"},
    ("POST", "/admin/api/payments"): {
        "id": "tr-1",
        "amount": "2500.00",
        "received_at": "2026-11-23T10:00:00+03:00",
        "source": "card_transfer",
        "payer_name": "Петрова Мария",
    },
    ("POST", "/admin/api/refunds"): {"order": "1001"},
    ("POST", "/admin/api/refunds/{request_id}/confirm"): None,
}
PUBLIC_PAGES = {("GET", "/admin/login"), ("GET", "/admin/admin.css"), ("POST", "/admin/login")}


def wrong_values(token: str) -> list[tuple[str, str]]:
    """(what, value) of token values made from a real one that are not a token."""

    def changed(index: int) -> str:
        return token[:index] + ("x" if token[index] != "x" else "y") + token[index + 1 :]

    return [
        ("one char changed (first)", changed(0)),
        ("one char changed (middle)", changed(len(token) // 2)),
        ("one char changed (last)", changed(len(token) - 1)),
        ("prefix (all but the last)", token[:-1]),
        ("prefix (half)", token[: len(token) // 2]),
        ("prefix (one char)", token[:1]),
        ("one char longer", token + "0"),
        ("case swapped", token.swapcase()),
        ("wrong", "wrong-token-0123456789"),
        ("empty", ""),
    ]


def near_misses(token: str) -> list[tuple[str, dict[str, str]]]:
    """(what, headers) of requests that carry no valid token, made from a real one."""
    return [
        *((f"Bearer {what}", {"Authorization": f"Bearer {v}"}) for what, v in wrong_values(token)),
        ("no Authorization", {}),
        ("Basic scheme", {"Authorization": f"Basic {token}"}),
        ("Token scheme", {"Authorization": f"Token {token}"}),
        ("no scheme", {"Authorization": token}),
        ("in another header", {"X-Admin-Token": token}),
    ]


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(FastPath(create_app(runtime)), follow_redirects=False) as test_client:
        # bulk replay 1, so that every id in a path names something that exists
        made = test_client.post(
            "/admin/api/failures/bulk-replay",
            json={"dry_run": False, "entity": "no-such-order"},
            headers={"Authorization": f"Bearer {OPERATOR}"},
        )
        assert made.status_code == 202, made.text
        yield test_client


def api_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path template) of every ``/admin/api`` operation in the OpenAPI document."""
    document = client.get("/openapi.json").json()
    return sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        if path.startswith("/admin/api")
        for method in operations
    )


def page_routes(runtime: Runtime) -> list[tuple[str, str]]:
    """(method, path template) of every ``/admin/`` page, as ``create_app`` includes them."""
    router = pages_router(runtime.settings, runtime.context)
    return sorted(
        (method, str(getattr(route, "path", "")))
        for route in router.routes
        for method in getattr(route, "methods", None) or ()
    )


def concrete(path: str) -> str:
    return re.sub(r"\{verb\}", "resolve", re.sub(r"\{\w+_id\}", "1", path))


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    body = BODIES.get((method, path))
    client.cookies.clear()
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    return int(client.request(method, concrete(path), **kwargs).status_code)


def test_every_action_has_a_body_here(client: TestClient) -> None:
    actions = {route for route in api_routes(client) if route[0] != "GET"}
    assert actions == set(BODIES)


def test_every_admin_api_route_answers_its_tokens(client: TestClient) -> None:
    """So that the refusals below are refusals of the token, not of the request."""
    for method, path in api_routes(client):
        if method == "GET":
            for token in TOKENS.values():
                status = call(client, method, path, {"Authorization": f"Bearer {token}"})
                assert status == 200, (method, path)


def test_every_admin_api_route_refuses_a_missing_or_wrong_token(client: TestClient) -> None:
    wrong: list[tuple[str, str, str, str, int]] = []
    routes = api_routes(client)
    assert len(routes) >= 20
    for name, token in TOKENS.items():
        for what, headers in near_misses(token):
            for method, path in routes:
                status = call(client, method, path, headers)
                if status != 401:
                    wrong.append((name, what, method, path, status))
    assert wrong == []
    client.cookies.clear()
    assert client.get(f"/admin/api/overview?token={OPERATOR}").status_code == 401
    assert client.get(f"/admin/api/overview?access_token={OPERATOR}").status_code == 401


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    token=st.sampled_from(sorted(TOKENS.values())),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["insert", "delete", "replace"]),
            st.integers(0, 40),
            st.characters(min_codepoint=33, max_codepoint=126),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_a_token_edited_anywhere_is_refused(
    client: TestClient, token: str, edits: list[tuple[str, int, str]]
) -> None:
    edited = token
    for kind, at, char in edits:
        at = at % (len(edited) + 1)
        if kind == "insert":
            edited = edited[:at] + char + edited[at:]
        elif kind == "delete":
            edited = edited[:at] + edited[at + 1 :]
        else:
            edited = edited[:at] + char + edited[at + 1 :]
    if edited.strip() in TOKENS.values():
        return  # the edits undid themselves (or only added surrounding spaces)
    client.cookies.clear()
    answer = client.get("/admin/api/failures", headers={"Authorization": f"Bearer {edited}"})
    assert answer.status_code == 401
    acted = client.post(
        "/admin/api/failures/1/replay", headers={"Authorization": f"Bearer {edited}"}
    )
    assert acted.status_code == 401


def test_a_viewer_is_refused_every_action(client: TestClient, runtime: Runtime) -> None:
    allowed: list[tuple[str, str, int]] = []
    for method, path in api_routes(client):
        if method != "GET":
            status = call(client, method, path, {"Authorization": f"Bearer {VIEWER}"})
            if status != 403:
                allowed.append((method, path, status))
    assert allowed == []
    with runtime.db.read() as conn:
        assert set(conn.execute(sa.select(failures.c.status)).scalars()) == {"open"}


# --- /admin/ pages: a session cookie holding the token ----------------------------------------


def page(client: TestClient, method: str, path: str, session: str | None) -> Any:
    """A page request with ``session`` as its token cookie and a CSRF field that matches it
    (whoever sets the cookies can compute it), so that only the token decides."""
    client.cookies.clear()
    nonce = "n" * 43
    cookies = f"{CSRF_COOKIE}={nonce}"
    if session is not None:
        cookies += f"; {SESSION_COOKIE}={session}"
    form = {"csrf": csrf_token(session or "", nonce), "comment": "x", "choice": "not_ours"}
    data = form if method == "POST" else None
    return client.request(method, concrete(path), headers={"Cookie": cookies}, data=data)


def test_every_page_signs_in_with_each_token(client: TestClient, runtime: Runtime) -> None:
    for method, path in page_routes(runtime):
        if method == "GET" and (method, path) not in PUBLIC_PAGES:
            for token in TOKENS.values():
                answer = page(client, method, path, token)
                assert answer.status_code == 200, (path, answer.status_code)


def test_every_page_sends_a_missing_or_wrong_token_to_sign_in(
    client: TestClient, runtime: Runtime
) -> None:
    wrong: list[tuple[str, str, str, int, str]] = []
    routes = [r for r in page_routes(runtime) if r not in PUBLIC_PAGES and r[1] != "/admin/logout"]
    assert len(routes) >= 15
    sessions: list[tuple[str, str | None]] = [("no cookie", None)]
    for token in TOKENS.values():
        sessions += wrong_values(token)
    for what, session in sessions:
        for method, path in routes:
            answer = page(client, method, path, session)
            location = answer.headers.get("location", "")
            if answer.status_code != 303 or not location.endswith(SIGN_IN):
                wrong.append((what, method, path, answer.status_code, location))
    assert wrong == []


def test_signing_in_with_a_near_miss_token_is_refused_without_a_session(
    client: TestClient,
) -> None:
    for token in TOKENS.values():
        for what, given_token in wrong_values(token):
            client.cookies.clear()
            nonce = "m" * 43
            answer = client.post(
                SIGN_IN,
                data={"csrf": csrf_token("", nonce), "token": given_token},
                headers={"Cookie": f"{CSRF_COOKIE}={nonce}"},
            )
            assert answer.status_code == 401, what
            assert SESSION_COOKIE not in answer.headers.get("set-cookie", ""), what


def test_a_signed_in_viewer_is_refused_every_page_action(
    client: TestClient, runtime: Runtime
) -> None:
    actions = [
        (m, p)
        for m, p in page_routes(runtime)
        if m == "POST" and (m, p) not in PUBLIC_PAGES and p != "/admin/logout"
    ]
    assert len(actions) >= 6
    allowed = [
        (m, p, status)
        for m, p in actions
        if (status := page(client, m, p, VIEWER).status_code) != 403
    ]
    assert allowed == []
    with runtime.db.read() as conn:
        assert set(conn.execute(sa.select(failures.c.status)).scalars()) == {"open"}
    # the same form from an operator acts: the refusals were the viewer's, not the form's
    done = page(client, "POST", "/admin/failures/{failure_id}/{verb}", OPERATOR)
    assert done.status_code == 303 and done.headers["location"].endswith("done=closed")
