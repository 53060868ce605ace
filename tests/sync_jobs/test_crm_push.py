"""The CRM push against the amoCRM sandbox (in process): one lead per order, one contact per
person, and no second lead when an earlier push reached amoCRM without our hearing back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis
import sqlalchemy as sa

from schoolsync.connectors.amocrm.client import AmoCrmClient
from schoolsync.connectors.amocrm.oauth import LongLivedToken
from schoolsync.connectors.http import Endpoint, build_client
from schoolsync.core.clock import utcnow
from schoolsync.core.config import AppConfig
from schoolsync.core.db import Database
from schoolsync.core.db.tables import orders
from schoolsync.core.domain import Customer, Money, Order, OrderStatus
from schoolsync.core.errors import UnavailableError
from schoolsync.core.settings import BrokerSettings, JobSettings
from schoolsync.core.stores import failures
from schoolsync.core.stores import orders as order_store
from schoolsync.mappings.amocrm import AmoCrmMapping, ProductMapping
from schoolsync.sandbox.amocrm import AmoSandboxConfig, create_app
from schoolsync.sync_jobs.broker import build_broker
from schoolsync.sync_jobs.context import JobContext
from schoolsync.sync_jobs.platforms import AmoCrmSetup, Platforms, SchoolPlatforms
from schoolsync.sync_jobs.queue import JobQueue
from schoolsync.sync_jobs.services import crm_push
from schoolsync.sync_jobs.services.crm_push import push_orders, resend_order
from tests.conftest import RedisServer, serving

SCHOOL = "default"
TOKEN = "push-test-token"
MAPPING = AmoCrmMapping.model_validate(
    {
        "pipeline_id": 1000,
        "stages": {"new": 1002, "in_work": 1003, "payed": 142},
        "fields": {"order_number": 5001, "product": 5002},
    }
)


class Setup:
    def __init__(self, db: Database, server: RedisServer, tmp_path: Path, base_url: str) -> None:
        self.amo = httpx.Client(base_url=base_url, timeout=10)
        endpoint = Endpoint("amocrm", "sandbox")
        http = build_client(base_url, timeout=0.5)  # a held request is a timeout in 0.5 s
        client = AmoCrmClient(http, endpoint, LongLivedToken(TOKEN, endpoint=endpoint), None)
        broker = build_broker(server.url, broker=BrokerSettings(), jobs=JobSettings())
        self.db = db
        self.ctx = JobContext(
            config=AppConfig(),
            db=db,
            queue=JobQueue(db, broker),
            jobs=JobSettings(),
            data_dir=tmp_path,
            platforms=Platforms(
                redis=redis.Redis.from_url(server.url),
                schools={
                    SCHOOL: SchoolPlatforms(
                        amocrm=AmoCrmSetup(account="sandbox", client=client, mapping=MAPPING)
                    )
                },
            ),
        )

    def add_orders(self, people: list[str]) -> list[str]:
        batch = [
            Order(
                platform="getcourse",
                account="sandbox",
                number=str(10_000 + index),
                status=OrderStatus.NEW,
                product="Пакет Эконом",
                cost=Money(amount=Decimal("991")),
                customer=Customer(
                    email=email,
                    phone=f"8 923 {abs(hash(email)) % 10_000_000:07d}",
                    first_name="Саша",
                ),
                created_at=utcnow().astimezone(ZoneInfo("Europe/Moscow")),
            )
            for index, email in enumerate(people)
        ]
        with self.db.write() as conn:
            order_store.upsert_many(conn, SCHOOL, batch)
        return [o.number for o in batch]

    def fault(self, **rule: Any) -> None:
        assert self.amo.post("/_sandbox/faults", json=rule).status_code == 200

    def leads_by_number(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for lead in self.amo.get("/_sandbox/leads").json():
            for field in lead.get("custom_fields_values") or []:
                if field["field_id"] == 5001:
                    found[str(field["values"][0]["value"])] += 1
        return found

    def states(self) -> Counter[str]:
        with self.db.read() as conn:
            return Counter(r[0] for r in conn.execute(sa.select(orders.c.crm_state)))


@pytest.fixture
def setup(
    sqlite_db: Database,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Setup]:
    # a push gives up on the first 5xx/timeout here (in service it tries a few times first)
    monkeypatch.setattr(crm_push, "_QUICK_TRIES", 0)
    app = create_app(AmoSandboxConfig(long_lived_token=TOKEN, rate_per_s=1000))
    with serving(app) as base_url:
        made = Setup(sqlite_db, redis_server, tmp_path, base_url)
        yield made
        made.amo.close()


def test_every_order_gets_one_lead_and_every_person_one_contact(setup: Setup) -> None:
    people = [f"parent{i % 40}@example.org" for i in range(120)]  # 40 people, 3 orders each
    numbers = setup.add_orders(people)

    assert push_orders(setup.ctx, SCHOOL) == 120

    assert setup.leads_by_number() == Counter(dict.fromkeys(numbers, 1))
    contacts = setup.amo.get("/_sandbox/contacts").json()
    assert len(contacts) == 40
    assert setup.states() == Counter({"synced": 120})
    # pushing again sends nothing: every order is synced
    assert push_orders(setup.ctx, SCHOOL) == 0
    assert len(setup.amo.get("/_sandbox/leads").json()) == 120


def test_a_push_that_reached_amocrm_unheard_does_not_create_a_second_lead(setup: Setup) -> None:
    numbers = setup.add_orders([f"p{i}@example.org" for i in range(30)])
    # amoCRM creates the leads but the answer is lost (a 504 after applying)
    setup.fault(
        endpoint="/api/v4/leads/complex",
        timeout_rate=1.0,
        timeout_s=1.5,
        apply_on_timeout=True,
    )
    with pytest.raises(UnavailableError):
        push_orders(setup.ctx, SCHOOL)
    assert sum(setup.leads_by_number().values()) == 30  # they are there, we did not hear
    assert setup.states() == Counter({"pending": 30})

    assert setup.amo.delete("/_sandbox/faults").status_code == 200
    assert push_orders(setup.ctx, SCHOOL) == 30

    assert setup.leads_by_number() == Counter(dict.fromkeys(numbers, 1))
    assert setup.states() == Counter({"synced": 30})


def test_a_send_abandoned_by_a_dead_worker_is_found_even_after_a_later_error(
    setup: Setup,
) -> None:
    numbers = setup.add_orders([f"q{i}@example.org" for i in range(10)])
    # a worker claimed the orders, amoCRM created the leads, the worker was killed (-9)
    setup.fault(
        endpoint="/api/v4/leads/complex",
        timeout_rate=1.0,
        timeout_s=1.5,
        apply_on_timeout=True,
    )
    with pytest.raises(UnavailableError):
        push_orders(setup.ctx, SCHOOL)
    setup.amo.delete("/_sandbox/faults")
    with setup.db.write() as conn:  # as a killed push leaves them: sending, no hint recorded
        conn.execute(
            sa.update(orders).values(
                crm_state="sending",
                crm_maybe_sent_at=None,
                crm_claimed_at=utcnow() - timedelta(minutes=11),
            )
        )
    # the next push reclaims them, then amoCRM fails before anything is sent
    setup.fault(endpoint="/api/v4/leads", status=503, error_rate=1.0)
    with pytest.raises(UnavailableError):
        push_orders(setup.ctx, SCHOOL)
    setup.amo.delete("/_sandbox/faults")

    assert push_orders(setup.ctx, SCHOOL) == 10
    assert setup.leads_by_number() == Counter(dict.fromkeys(numbers, 1))


def test_an_order_the_mapping_cannot_place_is_a_failure_and_goes_out_after_the_fix(
    setup: Setup,
) -> None:
    setup.add_orders(["a@example.org", "b@example.org"])
    assert setup.ctx.platforms is not None
    amocrm = setup.ctx.platforms.schools[SCHOOL].amocrm
    assert amocrm is not None
    amocrm.mapping = MAPPING.model_copy(update={"products": {"Пакет VIP": ProductMapping()}})

    assert push_orders(setup.ctx, SCHOOL) == 0
    assert setup.states() == Counter({"failed": 2})
    with setup.db.read() as conn:
        rows = failures.listing(conn, status="open", school=SCHOOL, limit=10)
    assert len(rows) == 2
    assert {r["actor"] for r in rows} == {"resend_order_to_crm"}
    assert all("Пакет Эконом" in r["error_message"] for r in rows)
    assert all("mappings.amocrm.products" in r["error_message"] for r in rows)

    # the admin adds the product and replays: the orders go out, once
    amocrm.mapping = MAPPING
    for row in rows:
        resend_order(setup.ctx, **row["args"])
    assert push_orders(setup.ctx, SCHOOL) == 2
    assert sum(setup.leads_by_number().values()) == 2


def test_people_already_in_amocrm_get_their_contact_even_while_the_mirror_is_built(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [f"known{i}@example.org" for i in range(600)]
    seeded = setup.amo.post(
        "/_sandbox/leads",
        json={
            "leads": [
                {
                    "name": f"Старая сделка {i}",
                    "_embedded": {
                        "contacts": [
                            {
                                "name": "Клиент",
                                "custom_fields_values": [
                                    {"field_code": "EMAIL", "values": [{"value": email}]}
                                ],
                            }
                        ]
                    },
                }
                for i, email in enumerate(people)
            ]
        },
    )
    assert seeded.status_code == 200, seeded.text
    monkeypatch.setattr(crm_push, "_CONTACT_PAGES_PER_LOOK", 1)  # 250 contacts a look
    setup.add_orders(people[-5:])  # the last people: on the third page of the mirror

    assert push_orders(setup.ctx, SCHOOL) == 5

    assert len(setup.amo.get("/_sandbox/contacts").json()) == 600  # no second contact
    leads = [lead for lead in setup.amo.get("/_sandbox/leads").json() if lead["price"] == 991]
    emails = {
        value["value"]
        for lead in leads
        for contact in lead["_embedded"]["contacts"]
        for field in contact.get("custom_fields_values") or []
        for value in field["values"]
        if field.get("field_code") == "EMAIL"
    }
    assert emails == set(people[-5:])


def test_a_few_5xx_do_not_stop_the_push(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crm_push, "_QUICK_TRIES", 5)
    numbers = setup.add_orders([f"r{i}@example.org" for i in range(200)])
    setup.fault(endpoint="/api/v4/leads/complex", error_rate=0.3, status=502, seed=7)

    assert push_orders(setup.ctx, SCHOOL) == 200  # no exception: tried again within the job

    assert setup.leads_by_number() == Counter(dict.fromkeys(numbers, 1))
    assert setup.amo.get("/_sandbox/state").json()["faults_injected"] > 0
