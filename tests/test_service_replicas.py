"""Several `serve` replicas over one PostgreSQL (issue 18): one schema step when they start together, writes keyed
by request id (a replay or a client's retry stores nothing twice), and with `store_acknowledge = committed`
nothing acknowledged lives only in a replica that dies. Real processes and a throwaway cluster; skips where
PostgreSQL is not installed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import create_engine, inspect, text

from reason_classifier.database import database_url
from service_process import ServiceProcess
from tests.test_service_postgres import postgres_url  # noqa: F401 - the fixture


def _row(request_id: str, item: int = 0, customer: str = "c") -> dict:
    return {
        "created_at": datetime.now(UTC),
        "request_id": request_id,
        "item": item,
        "text": "too expensive",
        "customer_id": customer,
        "category": "pricing",
        "abstained": False,
        "model_version": "test",
    }


def _drop(url: str) -> None:
    engine = create_engine(database_url(url))
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS classified_answers")
    engine.dispose()


def test_replicas_starting_together_create_the_schema_once(postgres_url):  # noqa: F811
    """Observed without the advisory lock: of 6 processes creating the table at once, some fail with
    `duplicate key value violates unique constraint "pg_type_typname_nsp_index"`."""
    from reason_classifier.service.store import REQUEST_ITEM, prepare_schema

    _drop(postgres_url)
    engines = [create_engine(database_url(postgres_url)) for _ in range(6)]
    start = threading.Barrier(len(engines))

    def prepare(engine):
        start.wait()
        prepare_schema(engine)

    with ThreadPoolExecutor(len(engines)) as pool:
        list(pool.map(prepare, engines))  # raises if one of them failed
    indexes = inspect(engines[0]).get_indexes("classified_answers")
    assert [i["name"] for i in indexes if i["unique"]] == [REQUEST_ITEM.name]
    for engine in engines:
        engine.dispose()


def test_an_older_table_gets_its_index_and_loses_only_the_second_copies(postgres_url, tmp_path):  # noqa: F811
    from reason_classifier.service.store import AnswerStore, classified_answers

    _drop(postgres_url)
    engine = create_engine(database_url(postgres_url))
    with engine.begin() as connection:  # as a version without the index made it, with a row stored twice
        classified_answers.create(connection)
        connection.exec_driver_sql("DROP INDEX classified_answers_request_item")
        connection.execute(classified_answers.insert(), [_row("a", customer="first"), _row("a", customer="again")])
        connection.execute(classified_answers.insert(), [_row("a", 1), _row("b")])
    store = AnswerStore(postgres_url, tmp_path / "spool")
    store.add([_row("a"), _row("c")])  # a replay of a stored row, and a new one
    assert store.flush()
    rows = store.rows()
    store.close()
    engine.dispose()
    assert [(r["request_id"], r["item"], r["customer_id"]) for r in rows] == [
        ("a", 0, "first"),
        ("a", 1, "c"),
        ("b", 0, "c"),
        ("c", 0, "c"),
    ]


def test_the_same_request_id_and_item_is_stored_once_in_sqlite_too(tmp_path):
    from reason_classifier.service.store import AnswerStore

    store = AnswerStore(str(tmp_path / "answers.db"))
    store.add([_row("r1"), _row("r1", 1)])
    store.add([_row("r1")])  # a retry of the first answer
    assert store.flush()
    assert [(r["request_id"], r["item"]) for r in store.rows()] == [("r1", 0), ("r1", 1)]
    store.close()


def test_two_replicas_one_killed_mid_load_store_every_acknowledged_answer_once(postgres_url, tmp_path, tiny_model):  # noqa: F811
    """Two real replicas on one PostgreSQL, started together; requests go to both at once, one replica is killed
    (SIGKILL) mid-load, and what it did not answer is retried on the other with the same X-Request-ID, as a load
    balancer's client would. Every acknowledged answer is in the database exactly once, also after the killed
    replica comes back and replays its spool."""
    _drop(postgres_url)
    settings = {
        "store": postgres_url,
        "store_acknowledge": "committed",
        "store_retry_max_seconds": 0.2,
        "model": tiny_model,
        "predict_timeout_seconds": 30,
    }
    first = ServiceProcess(ready=False, store_spool=tmp_path / "spool-1", **settings)
    second = ServiceProcess(ready=False, store_spool=tmp_path / "spool-2", **settings)
    acknowledged: dict[str, str] = {}  # request id -> customer
    lock = threading.Lock()
    answered_by_first = threading.Event()
    first_count = [0]

    def send(server: ServiceProcess, request_id: str, customer: str) -> bool:
        body = {"text": "too expensive for us", "customer_id": customer}
        try:
            status, _ = server.request("POST", "/v1/classify", body, headers={"x-request-id": request_id})
        except OSError:
            return False
        if status != 200:
            return False
        with lock:
            acknowledged[request_id] = customer
            if server is first:
                first_count[0] += 1
                if first_count[0] >= 40:
                    answered_by_first.set()
        return True

    def client(i: int) -> None:
        request_id, customer = f"replica-test-{i:04d}", f"customer-{i}"
        server = first if i % 2 == 0 else second
        if not send(server, request_id, customer):
            assert send(second, request_id, customer), f"{request_id} failed on the surviving replica too"

    with first, second:
        first.wait_ready()
        second.wait_ready()  # both started at once over an empty database: one schema step, no failure
        killer = threading.Thread(target=lambda: answered_by_first.wait(120) and first.kill())
        killer.start()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(client, range(300)))
        killer.join()
        assert first.process.poll() is not None, "the first replica was not killed mid-load"
        for request_id, customer in list(acknowledged.items())[:20]:  # a client retrying answers already given
            assert send(second, request_id, customer)
        assert len(acknowledged) == 300 and 40 <= first_count[0] < 150
        _assert_stored_once(postgres_url, acknowledged)  # the killed replica is still down: nothing waits in it
    with ServiceProcess(store_spool=tmp_path / "spool-1", **settings) as back:  # replays what the killed one left
        deadline = time.monotonic() + 30
        while back.request("GET", "/readyz")[1]["store"]["pending_rows"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    _assert_stored_once(postgres_url, acknowledged)


def _assert_stored_once(url: str, acknowledged: dict[str, str]) -> None:
    engine = create_engine(database_url(url))
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT request_id, customer_id, count(*) OVER (PARTITION BY request_id) FROM classified_answers")
        ).all()
    engine.dispose()
    assert {request_id: customer for request_id, customer, _ in stored} == acknowledged
    assert max(count for _, _, count in stored) == 1 and len(stored) == len(acknowledged)
