"""Property-based fuzzing of the OpenAPI schema with schemathesis: whatever is sent, never a 5xx.

Data that fits the schema and data that does not (wrong types, missing fields, junk bodies) is sent
to every operation, with the SQLite store on; examples are bounded so this runs in about 15 s.
"""

from __future__ import annotations

import time

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi

from reason_classifier.service import ServiceSettings, create_app

EXAMPLES_PER_OPERATION_AND_MODE = 60


def test_no_input_gets_a_server_error(classifier, tmp_path):
    app = create_app(
        ServiceSettings.load(store=str(tmp_path / "answers.sqlite3"), max_batch_items=5, predict_timeout_seconds=30),
        classifier=classifier,
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    with asgi.get_client(app) as client:  # starts the app's lifespan, which schemathesis keeps for its calls
        deadline = time.monotonic() + 30
        while client.get("http://testserver/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the app did not become ready"
            time.sleep(0.01)
    # The schemathesis pytest plugin's lazy fixtures do not support this pytest; drive hypothesis per operation instead.
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/classify", "/v1/classify/batch", "/v1/taxonomy", "/healthz"}
    sent = 0
    for operation in operations:
        # A GET without parameters has no wrong input to generate.
        modes = (
            (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
            if operation.method.upper() == "POST"
            else (GenerationMode.POSITIVE,)
        )
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            def no_server_error(case):
                nonlocal sent
                response = case.call()
                sent += 1
                case.validate_response(response, checks=[not_a_server_error])

            no_server_error()
    assert sent >= 100
    app.state.service.store.flush()
