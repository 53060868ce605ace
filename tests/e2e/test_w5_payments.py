"""W5 end to end: a GetCourse order, its YooKassa payment by notification, and what follows,
with `schoolsync run` (real Redis, real processes) and the sandboxes it serves."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e

FINANCE = -1001000000002
YOOKASSA_ADDRESS = "185.71.76.10"  # inside YooKassa's published networks


def school_yaml(port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    return f"""
accounts:
  getcourse:
    account: sandbox
    base_url: {base}/getcourse
    key_env: sandbox_getcourse_key
    callback_secret_env: sandbox_getcourse_callback
  amocrm:
    account: sandbox
    base_url: {base}/amocrm
    long_lived_token_env: sandbox_amocrm_token
  telegram:
    bot: sandbox
    base_url: {base}/telegram
    token_env: sandbox_telegram_token
    webhook_secret_env: sandbox_telegram_webhook
  yookassa:
    shop_id: "100500"
    secret_key_env: sandbox_yookassa_key
    base_url: {base}/yookassa/v3
    trusted_proxies: ["127.0.0.1/32"]     # our HTTPS proxy; YooKassa's networks as published
  paypal:
    client_id: sandbox-paypal-client-id
    client_secret_env: paypal_secret
    webhook_id: 1JE4291016473214C
    base_url: {base}/paypal
  robokassa:
    merchant_login: schoolsync-sandbox
    password1_env: sandbox_robokassa_password1
    password2_env: sandbox_robokassa_password2
channels:
  finance_income: {FINANCE}
mappings:
  amocrm:
    pipeline_id: 1000
    stages: {{new: 1002, in_work: 1003, payment_waiting: 1003, part_payed: 1003, payed: 142,
              cancelled: 143, "false": 143, pending: 1003, not_confirmed: 1002,
              waiting_for_return: 1003}}
    fields: {{order_number: 5001, product: 5002, payment_link: 5003}}
rules:
  payments:
    # this school's YooKassa shop is not connected to GetCourse: GetCourse must be told
    getcourse_unseen: [yookassa, card_transfer, bank_transfer, paypal]
  reconciliation:
    manual_grace_hours: 0   # the handbook's day, shortened for the test
"""


@pytest.fixture
def w5(
    service_factory: Callable[..., Service], tmp_path: Path
) -> Callable[[], tuple[Service, httpx.Client]]:
    def start() -> tuple[Service, httpx.Client]:
        port = free_port()
        (tmp_path / "schoolsync.yaml").write_text(school_yaml(port), encoding="utf-8")
        service = service_factory(
            SCHOOLSYNC_SANDBOX="true",
            SCHOOLSYNC_SANDBOX_PORT=str(port),
            SCHOOLSYNC_SECRETS__PAYPAL_SECRET="sandbox-paypal-client-secret",
        )
        sandboxes = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

        def up() -> bool:
            try:
                return sandboxes.get("/").status_code == 200
            except httpx.HTTPError:
                return False

        service.wait_for(up, timeout=30, what="the sandboxes")
        return service, sandboxes

    return start


def notify(service: Service, payment: dict[str, Any], *, source: str) -> httpx.Response:
    body = {"type": "notification", "event": "payment.succeeded", "object": payment}
    return service.http.post(
        "/webhooks/yookassa", content=json.dumps(body), headers={"X-Forwarded-For": source}
    )


def test_a_yookassa_payment_pays_its_order_once_and_forgeries_are_refused(
    w5: Callable[[], tuple[Service, httpx.Client]],
) -> None:
    service, sb = w5()
    made = sb.post("/getcourse/_sandbox/orders", json={"count": 1, "email": "mama@example.org"})
    number = made.json()["orders"][0]["number"]
    service.wait_for(
        lambda: bool(service.query("SELECT id FROM orders WHERE crm_state = 'synced'")),
        timeout=60,
        what="the order in the CRM",
    )
    cost = sb.get(f"/getcourse/_sandbox/orders/{number}").json()["cost"]
    payment = sb.post(
        "/yookassa/_sandbox/payments", json={"amount": cost, "metadata": {"order_id": number}}
    ).json()
    pending = dict(payment)
    sb.post(f"/yookassa/_sandbox/payments/{payment['id']}/succeed", json={"notify": False})

    # from outside YooKassa's networks (and forged as succeeded): refused, kept, not paid
    assert notify(service, pending, source="8.8.8.8").status_code == 403
    # the same genuine notification five times
    for _ in range(5):
        assert notify(service, pending, source=YOOKASSA_ADDRESS).status_code == 200

    def finance_lines() -> list[str]:
        found = sb.get(f"/telegram/_sandbox/messages?chat_id={FINANCE}&present=1").json()
        return [m["text"] for m in found["messages"]]

    service.wait_for(lambda: len(finance_lines()) == 1, timeout=60, what="the finance line")
    inbox_id = service.query(
        "SELECT id FROM inbox WHERE source = 'yookassa' AND status != 'rejected'"
    )[0]["id"]
    assert service.cli("inbox", "replay", str(inbox_id)).returncode == 0
    service.wait_for(
        lambda: bool(
            service.query(
                "SELECT id FROM jobs WHERE dedup_key LIKE :k AND status = 'done'",
                k=f"inbox:{inbox_id}:replay:%",
            )
        ),
        timeout=60,
        what="the replay",
    )

    rows = service.query(
        "SELECT source, status, amount_minor, order_number, match_state FROM payments"
    )
    assert [dict(r) for r in rows] == [
        {
            "source": "yookassa",
            "status": "succeeded",
            "amount_minor": int(Decimal(cost) * 100),
            "order_number": number,
            "match_state": "matched",
        }
    ]
    assert finance_lines() == [f"{Decimal(cost):.0f} {finance_lines()[0].split(' ', 1)[1]}"]
    assert "YooKassa" in finance_lines()[0] and number in finance_lines()[0]
    assert sb.get("/getcourse/_sandbox/state").json()["payments"] == 1
    assert sb.get(f"/getcourse/_sandbox/orders/{number}").json()["status"] == "payed"
    rejected = service.query("SELECT reject_reason FROM inbox WHERE status = 'rejected'")
    assert len(rejected) == 1 and "source" in rejected[0]["reject_reason"]


def test_a_notification_whose_payment_is_not_paid_records_nothing_paid(
    w5: Callable[[], tuple[Service, httpx.Client]],
) -> None:
    service, sb = w5()
    payment = sb.post("/yookassa/_sandbox/payments", json={"amount": "2500.00"}).json()
    claimed = {**payment, "status": "succeeded", "paid": True}  # what the notification claims

    assert notify(service, claimed, source=YOOKASSA_ADDRESS).status_code == 200
    service.wait_for(
        lambda: bool(service.query("SELECT id FROM payments")), timeout=60, what="the ledger row"
    )

    rows = service.query("SELECT status FROM payments")
    assert [r["status"] for r in rows] == ["pending"]  # YooKassa, asked, says it is not paid
    assert service.query("SELECT id FROM outbox") == []


def test_a_robokassa_payment_is_answered_ok_only_after_storing_and_forgeries_refused(
    w5: Callable[[], tuple[Service, httpx.Client]],
) -> None:
    service, sb = w5()
    made = sb.post("/getcourse/_sandbox/orders", json={"count": 1, "email": "papa@example.org"})
    number = made.json()["orders"][0]["number"]
    service.wait_for(
        lambda: bool(service.query("SELECT id FROM orders WHERE crm_state = 'synced'")),
        timeout=60,
        what="the order in the CRM",
    )
    cost = sb.get(f"/getcourse/_sandbox/orders/{number}").json()["cost"]

    paid = sb.post(
        "/robokassa/_sandbox/pay",
        json={"inv_id": 501, "out_sum": cost, "shp": {"order": number}},
    ).json()
    forged = sb.post(
        "/robokassa/_sandbox/pay",
        json={"inv_id": 502, "out_sum": cost, "shp": {"order": number}, "bad_signature": True},
    ).json()

    assert paid["delivered"] is True
    assert paid["attempts"][-1]["reply"] == "OK501"
    assert forged["delivered"] is False and forged["attempts"][0]["status"] == 400
    service.wait_for(
        lambda: bool(service.query("SELECT id FROM payments WHERE match_state = 'matched'")),
        timeout=60,
        what="the matched payment",
    )
    rows = service.query("SELECT source, external_id, order_number FROM payments")
    assert [tuple(r.values()) for r in rows] == [("robokassa", "501", number)]
    rejected = service.query("SELECT source FROM inbox WHERE status = 'rejected'")
    assert {r["source"] for r in rejected} == {"robokassa"}


def test_a_paypal_capture_signed_by_paypal_pays_its_order(
    w5: Callable[[], tuple[Service, httpx.Client]],
) -> None:
    from schoolsync.connectors.paypal.certs import CertStore
    from schoolsync.sandbox.paypal.config import PayPalSandboxConfig

    service, sb = w5()
    # the operator seeds the certificate cache (the sandbox's cert URL is PayPal-style https)
    pem = sb.get("/paypal/_sandbox/cert.pem").content
    CertStore(service.directory / "var" / "paypal-certs").seed(PayPalSandboxConfig().cert_url, pem)
    made = sb.post("/getcourse/_sandbox/orders", json={"count": 1, "email": "dad@example.org"})
    number = made.json()["orders"][0]["number"]
    service.wait_for(
        lambda: bool(service.query("SELECT id FROM orders WHERE crm_state = 'synced'")),
        timeout=60,
        what="the order in the CRM",
    )
    cost = sb.get(f"/getcourse/_sandbox/orders/{number}").json()["cost"]

    paid = sb.post(
        "/paypal/_sandbox/captures",
        json={
            "amount": cost,
            "currency": "RUB",
            "invoice_id": number,
            "custom_id": number,
            "payer": {"given_name": "Sasha", "surname": "Demin", "email": "dad@example.org"},
        },
    )
    paid.raise_for_status()

    service.wait_for(
        lambda: bool(service.query("SELECT id FROM payments WHERE match_state = 'matched'")),
        timeout=60,
        what="the matched PayPal payment",
    )
    # recorded as the worker re-fetched it from PayPal: the capture, its fee, the order's payer
    (row,) = service.query("SELECT external_id, fee_minor, payer_email, order_number FROM payments")
    capture = paid.json()["capture"]
    fee = capture["seller_receivable_breakdown"]["paypal_fee"]["value"]
    assert (row["external_id"], row["order_number"]) == (capture["id"], number)
    assert (row["fee_minor"], row["payer_email"]) == (int(Decimal(fee) * 100), "dad@example.org")
    # PayPal money never reaches GetCourse by itself: GetCourse is told
    service.wait_for(
        lambda: sb.get("/getcourse/_sandbox/state").json()["payments"] == 1,
        timeout=60,
        what="the GetCourse payment",
    )
    assert sb.get(f"/getcourse/_sandbox/orders/{number}").json()["status"] == "payed"


def test_the_handbooks_double_is_removed_once_from_the_command_line(
    w5: Callable[[], tuple[Service, httpx.Client]],
) -> None:
    """W7: a manager records a transfer for an order that YooKassa then also pays; the
    reconciliation run takes the manual payment back in GetCourse once and says so."""
    service, sb = w5()
    made = sb.post("/getcourse/_sandbox/orders", json={"count": 1, "email": "mama@example.org"})
    number = made.json()["orders"][0]["number"]
    service.wait_for(
        lambda: bool(service.query("SELECT id FROM orders WHERE crm_state = 'synced'")),
        timeout=60,
        what="the order in the CRM",
    )
    cost = sb.get(f"/getcourse/_sandbox/orders/{number}").json()["cost"]
    added = service.cli(
        "payments", "add", "--amount", cost, "--payer", "Демин Саша", "--order", number
    )
    assert added.returncode == 0, added.stderr
    payment = sb.post(
        "/yookassa/_sandbox/payments", json={"amount": cost, "metadata": {"order_id": number}}
    ).json()
    sb.post(f"/yookassa/_sandbox/payments/{payment['id']}/succeed", json={"notify": False})
    assert notify(service, payment, source=YOOKASSA_ADDRESS).status_code == 200

    def gc_payments() -> list[str]:
        found = sb.get(f"/getcourse/_sandbox/orders/{number}").json()["payments"]
        return [p["status"] for p in found]

    service.wait_for(
        lambda: (
            len(service.query("SELECT id FROM payments WHERE status = 'succeeded'")) == 2
            and not service.query(
                "SELECT id FROM jobs WHERE status NOT IN ('done', 'failed', 'dead')"
            )
        ),
        timeout=60,
        what="both payments settled",
    )
    assert gc_payments() == ["accepted"]

    first = service.cli("reconcile", "run")
    second = service.cli("reconcile", "run")
    queue = service.cli("reconcile", "queue")

    # the double taken back, and YooKassa's payment (flagged: the order looked paid) matched
    assert first.returncode == 0 and "2 acted on" in first.stdout, first.stdout + first.stderr
    assert "duplicate_manual │ 1" in first.stdout
    assert "0 acted on" in second.stdout
    assert "nothing waits" in queue.stdout
    assert gc_payments() == ["returned"]

    def doubles() -> list[str]:
        found = sb.get(f"/telegram/_sandbox/messages?chat_id={FINANCE}&present=1").json()
        return [m["text"] for m in found["messages"] if "Двойная оплата" in m["text"]]

    service.wait_for(lambda: bool(doubles()), timeout=60, what="the line in ФИНАНСЫ ПРИХОДЫ")
    assert len(doubles()) == 1 and number in doubles()[0]
