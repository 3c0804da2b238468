"""schemathesis against the API's own OpenAPI document, on a real server (uvicorn, TLS,
loopback), authenticated as a parent with a few sub-accounts: no 5xx, and every answer
conforms to the document (status codes, content types, headers, bodies).

Bounded here (25 examples per operation); for a longer run:
    SCHEMATHESIS_EXAMPLES=500 .venv/bin/pytest tests/hardening/test_api_schemathesis.py -q
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Err, Ok

from api.harness import PASSWORD, Running

if TYPE_CHECKING:
    from schemathesis.specs.openapi.schemas import OpenApiCase

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def target(start_server: Callable[..., Running]) -> Iterator[tuple[Running, requests.Session]]:
    # schemathesis also replays requests with made-up credentials: no ban for this run.
    # Plain HTTP: schemathesis' replays make their own connections (TLS is tested in tests/api).
    api = start_server(ban={"max_failures": 1_000_000}, api={
        "listen": "127.0.0.1", "https_port": 0, "http_port": None, "tls": False,
        "require_https": False})
    parent = api.parent()
    session = requests.Session()
    token = base64.b64encode(f"{parent.username}:{PASSWORD}".encode()).decode()
    session.headers["Authorization"] = f"Basic {token}"  # a header it can replace, not auth=
    for name in ("pm_st_one", "pm_st_two"):
        created = session.post(f"http://127.0.0.1:{api.ports.https}/api/sub/create/",
                               data={"username": name}, timeout=10)
        assert created.status_code == 200, created.text
    yield api, session
    session.close()


def test_the_api_conforms_to_its_document(target: tuple[Running, requests.Session]) -> None:
    """Every operation of the document, each with its own bounded hypothesis run (the
    schemathesis pytest plugin's fixture loader does not run under this pytest)."""
    api, session = target
    base = f"http://127.0.0.1:{api.ports.https}"
    document = session.get(f"{base}/api/openapi.json", timeout=10).json()
    loaded = schemathesis.openapi.from_dict(document)
    results = list(loaded.get_all_operations())
    assert not [result.err() for result in results if isinstance(result, Err)]
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def conforms(case: OpenApiCase) -> None:
            response = case.call(base_url=base, session=session, timeout=10)
            assert response.status_code < 500, (case.as_curl_command(), response.text)
            # The spec fixes 400 for a username taken and 402 for a plan's limit, where
            # this check expects 409: state-dependent refusals of schema-valid data.
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        conforms()
