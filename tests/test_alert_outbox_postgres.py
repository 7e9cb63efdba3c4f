"""Two service replicas on one PostgreSQL store share its alert outbox (issue 16): `FOR UPDATE SKIP LOCKED`
claims, so each alert is sent by one of them, once. Skipped without PostgreSQL, like the store's tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import create_engine, insert

from reason_classifier.answer_store_schema import alert_outbox, create_tables
from reason_classifier.database import database_url
from reason_classifier.webhooks import Alert, RetryPolicy, WebhookDestination, alert_id
from reason_classifier.webhooks.dispatcher import Dispatcher
from reason_classifier.webhooks.outbox import Outbox, outbox_row
from test_service_postgres import postgres_url  # noqa: F401 - the module's throwaway cluster, as a fixture
from webhook_receiver import Receiver

SECRET = "whsec_postgres_outbox_test"


def test_two_dispatchers_on_one_postgres_outbox_send_each_alert_once(postgres_url):  # noqa: F811
    url = database_url(postgres_url)
    engine = create_engine(url)
    create_tables(engine)
    now = datetime.now(UTC)
    alerts = [
        Alert(
            id=alert_id(f"pg-{i}", 0, "support"),
            created_at=now,
            team="support",
            request_id=f"pg-{i}",
            category="support",
        )
        for i in range(120)
    ]
    with engine.begin() as connection:
        connection.execute(insert(alert_outbox), [outbox_row(a) for a in alerts])
    receiver = Receiver(SECRET).start()
    destinations = {"support": WebhookDestination(url=receiver.url, secret=SECRET)}
    replicas = [
        Dispatcher(Outbox(create_engine(url)), destinations, RetryPolicy(), batch=8, idle_seconds=0.05).start()
        for _ in range(2)
    ]
    outbox = Outbox(engine)
    try:
        deadline = time.monotonic() + 120
        while outbox.counts()["delivered"] < len(alerts):
            assert time.monotonic() < deadline, outbox.counts()
            time.sleep(0.05)
    finally:
        for replica in replicas:
            replica.stop()
        receiver.stop()
    assert sorted(receiver.keys()) == sorted(a.id for a in alerts)  # every alert, and each one once
    assert receiver.attempts == len(alerts)
