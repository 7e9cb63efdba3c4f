"""The alert outbox and its dispatcher (issue 16): every alert arrives once the receiver recovers, signed;
one that never can ends dead, counted, and can be replayed."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, insert

from reason_classifier.answer_store_schema import alert_outbox, create_tables
from reason_classifier.webhooks import Alert, RetryPolicy, WebhookDestination, alert_id
from reason_classifier.webhooks.dispatcher import Dispatcher
from reason_classifier.webhooks.outbox import Outbox, outbox_row
from tests.webhook_receiver import Receiver, free_port

SECRET = "whsec_outbox_test_secret"
FAST = RetryPolicy(timeout_seconds=0.5, first_delay_seconds=0.05, max_delay_seconds=0.3, give_up_after_seconds=60)


def alerts(n: int, team: str = "support") -> list[Alert]:
    now = datetime.now(UTC)
    return [
        Alert(
            id=alert_id(f"req-{i}", 0, team),
            created_at=now,
            team=team,
            request_id=f"req-{i}",
            customer_id=f"c-{i}",
            category="support",
            sub_reason="slow_response",
        )
        for i in range(n)
    ]


def outbox_with(tmp_path, items: list[Alert]) -> Outbox:
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    create_tables(engine)
    with engine.begin() as connection:
        connection.execute(insert(alert_outbox), [outbox_row(a) for a in items])
    return Outbox(engine)


def wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_every_alert_arrives_once_after_the_receiver_was_down_failing_and_slow(tmp_path):
    items = alerts(40)
    outbox = outbox_with(tmp_path, items)
    receiver = Receiver(SECRET, port=free_port())  # down: nothing listens yet
    destinations = {"support": WebhookDestination(url=receiver.url, secret=SECRET)}
    dispatcher = Dispatcher(outbox, destinations, FAST, idle_seconds=0.05).start()
    try:
        wait_for(lambda: outbox.counts()["retrying"] == 40)  # every alert tried against a closed port
        receiver.status = 500
        receiver.start()
        wait_for(lambda: receiver.attempts >= 40)
        receiver.status, receiver.delay_seconds = 200, 1.0  # slower than the timeout: still failures
        wait_for(lambda: receiver.attempts >= 50)
        assert outbox.counts()["delivered"] == 0 or receiver.received  # a slow 200 may be recorded as a timeout
        receiver.delay_seconds = 0.0
        wait_for(lambda: outbox.counts()["delivered"] == 40)
    finally:
        dispatcher.stop()
        receiver.stop()
    keys = receiver.keys()
    assert set(keys) == {a.id for a in items}  # each signed (the receiver verified it) and none lost
    assert outbox.counts() == {"pending": 0, "retrying": 0, "delivered": 40, "dead": 0}
    bodies = {json.loads(r.body)["request_id"] for r in receiver.received}
    assert bodies == {f"req-{i}" for i in range(40)}


def test_a_receiver_that_never_recovers_ends_in_the_dead_letter_and_a_replay_delivers(tmp_path):
    items = alerts(3, team="product")
    outbox = outbox_with(tmp_path, items)
    receiver = Receiver(SECRET, status=503).start()
    policy = FAST.model_copy(update={"give_up_after_seconds": 3})
    dispatcher = Dispatcher(
        outbox, {"product": WebhookDestination(url=receiver.url, secret=SECRET)}, policy, idle_seconds=0.05
    ).start()
    try:
        wait_for(lambda: outbox.counts()["dead"] == 3)
        dead = outbox.dead()
        assert {d.alert_id for d in dead} == {a.id for a in items} and all(d.last_status == 503 for d in dead)
        assert all(d.attempts >= 2 and d.last_error == "HTTP 503" for d in dead)
        assert not hasattr(dead[0], "customer_id")
        receiver.status = 200
        assert outbox.replay(team="support") == 0 and outbox.replay([items[0].id]) == 1
        wait_for(lambda: outbox.counts()["delivered"] == 1)
        assert outbox.replay() == 2
        wait_for(lambda: outbox.counts()["delivered"] == 3)
    finally:
        dispatcher.stop()
        receiver.stop()
    assert sorted(receiver.keys()) == sorted(a.id for a in items)


def test_a_refusal_is_dead_at_once_and_a_team_without_a_webhook_too(tmp_path):
    outbox = outbox_with(tmp_path, alerts(1, "support") + alerts(1, "growth"))
    receiver = Receiver(SECRET, status=404).start()
    dispatcher = Dispatcher(outbox, {"support": WebhookDestination(url=receiver.url, secret=SECRET)}, FAST)
    try:
        assert dispatcher.dispatch_once() == 2
    finally:
        dispatcher.stop()
        receiver.stop()
    errors = {d.team: (d.attempts, d.last_error) for d in outbox.dead()}
    assert errors == {
        "support": (1, "HTTP 404: the receiver refuses the alert"),
        "growth": (1, "no webhook is configured for team growth"),
    }


def test_a_claimed_alert_is_left_alone_until_its_lease_runs_out(tmp_path):
    outbox = outbox_with(tmp_path, alerts(5))
    now = datetime.now(UTC)
    first = outbox.claim(3, lease_seconds=30, now=now)
    second = outbox.claim(10, lease_seconds=30, now=now)
    assert len(first) == 3 and len(second) == 2 and not {c.id for c in first} & {c.id for c in second}
    assert outbox.claim(10, 30, now=now + timedelta(seconds=29)) == []
    assert len(outbox.claim(10, 30, now=now + timedelta(seconds=31))) == 5  # a dispatcher died: tried again
