"""The OpenAPI document and the interactive docs, served by the API itself."""

from __future__ import annotations

from typing import Any

import httpx

from meshproxy.api.endpoints import ENDPOINTS
from meshproxy.domain.forms import SubAccountForm

from .harness import Running


def _document(api: Running) -> dict[str, Any]:
    response = api.client().get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


def test_document_lists_every_endpoint(api: Running) -> None:
    document = _document(api)
    assert document["openapi"].startswith("3.0")
    for endpoint in ENDPOINTS:
        operation = document["paths"][endpoint.path][endpoint.method.lower()]
        assert str(endpoint.success) in operation["responses"]
        for status in ("401", "405", "500"):
            assert status in operation["responses"]
    assert document["components"]["securitySchemes"]["basicAuth"] == {
        "type": "http",
        "scheme": "basic",
    }


def test_form_fields_and_limits_come_from_the_forms(api: Running) -> None:
    document = _document(api)
    create = document["paths"]["/api/sub/create/"]["post"]
    schema = create["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert list(schema["properties"]) == list(SubAccountForm.fields)
    assert schema["required"] == ["username"]
    assert schema["properties"]["username"]["maxLength"] == 30
    assert schema["properties"]["password"]["maxLength"] == 128
    assert schema["properties"]["first_name"]["maxLength"] == 20
    assert schema["properties"]["email"]["maxLength"] == 255
    assert schema["properties"]["monthly_limit"]["type"] == "integer"
    assert schema["properties"]["monthly_limit"]["minimum"] == 0
    get = document["paths"]["/api/sub/get/"]["get"]
    assert [(p["name"], p["in"], p["required"]) for p in get["parameters"]] == [
        ("username", "query", True)
    ]
    assert "402" in create["responses"] and "503" in create["responses"]
    geo = document["paths"]["/api/geoips/{name}/"]["get"]["parameters"][0]
    assert geo["schema"]["enum"] == ["open", "world"]


def test_documented_details_match_a_real_answer(api: Running) -> None:
    document = _document(api)
    details = document["components"]["schemas"]["SubAccountDetails"]
    parent = api.parent()
    body = parent.client().post("/api/sub/create/", data={"username": "pm_doc_check"}).json()
    assert set(details["required"]) == set(body)
    assert set(body) <= set(details["properties"])


def test_interactive_docs_are_served_without_a_cdn(api: Running) -> None:
    client: httpx.Client = api.client()
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "http://" not in page.text and "https://" not in page.text
    for asset in (
        "/api/docs/static/swagger-ui-bundle.js",
        "/api/docs/static/swagger-ui.css",
        "/api/docs/init.js",
    ):
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100
    assert "/api/openapi.json" in client.get("/api/docs/init.js").text
    assert client.get("/api/docs").status_code == 308
