"""The OpenAPI 3.0 document, generated from the endpoint table and the forms' fields (the
same definitions that validate requests), so the document cannot drift from the API."""

from __future__ import annotations

from typing import Any

from meshproxy import __version__
from meshproxy.api.endpoints import ENDPOINTS, Endpoint
from meshproxy.config import Settings
from meshproxy.domain.forms import NON_FIELD_ERRORS, Form
from meshproxy.domain.stats import COUNTERS

_GB = {"type": "number", "format": "double", "description": "gigabytes (10^9 bytes)"}
_LIMIT = {"type": "integer", "minimum": 0, "description": "whole GB; 0 means no limit"}
_STRINGS = {"type": "array", "items": {"type": "string"}}

_DETAILS: dict[str, Any] = {
    "type": "object",
    "required": [
        "username",
        "active",
        "monthly_bandwidth",
        "monthly_bandwidth_limit",
        "total_bandwidth",
        "total_bandwidth_limit",
    ],
    "properties": {
        "username": {"type": "string"},
        "active": {"type": "boolean"},
        "monthly_bandwidth": {**_GB, "description": "GB used in the current billing period"},
        "monthly_bandwidth_limit": _LIMIT,
        "total_bandwidth": {**_GB, "description": "GB used over all time"},
        "total_bandwidth_limit": _LIMIT,
        "first_name": {"type": "string", "description": "present only when set"},
        "last_name": {"type": "string", "description": "present only when set"},
        "email": {"type": "string", "description": "present only when set"},
    },
}


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


SCHEMAS: dict[str, Any] = {
    "SubAccountDetails": _DETAILS,
    "SubAccountPage": _object(
        sub_accounts={"type": "array", "items": {"$ref": "#/components/schemas/SubAccountDetails"}},
        total={"type": "integer"},
        offset={"type": "integer"},
        limit={"type": "integer"},
    ),
    "AccountStats": _object(
        username={"type": "string"},
        days={
            "type": "array",
            "description": "every day of the window, oldest first (UTC; zeros without requests)",
            "items": _object(
                day={"type": "string", "format": "date"},
                **{name: {"type": "integer", "minimum": 0} for name in COUNTERS},
                hosts={
                    "type": "array",
                    "description": "destination hosts by bytes, at most 100 and '(other)'",
                    "items": _object(host={"type": "string"}, bytes={"type": "integer"}),
                },
            ),
        },
    ),
    "Ip": _object(ip={"type": "string"}),
    "Ips": _object(ips=_STRINGS),
    "Domain": _object(domain={"type": "string"}),
    "Domains": _object(domains=_STRINGS),
    "Proxy": _object(proxy={"type": "string", "example": "open.proxymesh.example"}),
    "Proxies": _object(proxies={**_STRINGS, "example": ["open.proxymesh.example:31280"]}),
    "GeoIps": {
        "type": "object",
        "additionalProperties": {"type": "integer"},
        "description": "ISO country code -> number of egress IPs",
        "example": {"US": 12, "DE": 3},
    },
    "Webhook": _object(
        id={"type": "integer"},
        url={"type": "string", "format": "uri"},
        created={"type": "string", "format": "date-time"},
    ),
    "Webhooks": _object(
        webhooks={"type": "array", "items": {"$ref": "#/components/schemas/Webhook"}}
    ),
    "FormErrors": {
        "type": "object",
        "additionalProperties": _STRINGS,
        "description": f"field name -> messages; errors of no one field under {NON_FIELD_ERRORS}",
        "example": {"username": ["This field is required."]},
    },
    "Error": _object(error={"type": "string"}),
}

_ERRORS = {
    302: "HTTP request when HTTPS is required (Location: the same path on https)",
    400: "Form error",
    401: "Basic authentication failure, or the client IP is banned after repeated failures",
    402: "Payment required: the plan allows no more",
    403: "Sub-account credentials, or a username that is not one of your sub-accounts",
    404: "Not found",
    405: "Wrong HTTP method (see Allow)",
    500: "Server error",
    503: "Plan error or database unreachable; retry after Retry-After seconds",
}
_ALWAYS = (302, 401, 405, 500, 503)


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _fields_schema(form: type[Form]) -> dict[str, Any]:
    properties = {
        name: {**field.schema, "description": field.description}
        for name, field in form.fields.items()
    }
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [name for name, field in form.fields.items() if field.required]
    if required:
        schema["required"] = required
    return schema


def _responses(endpoint: Endpoint) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if endpoint.body is not None:
        responses[str(endpoint.success)] = {
            "description": "Success",
            "content": _json(endpoint.body),
        }
    else:
        responses[str(endpoint.success)] = {"description": "Success, with an empty body"}
    for status in sorted(set(endpoint.errors) | set(_ALWAYS)):
        schema = "FormErrors" if status == 400 else "Error"
        responses[str(status)] = {"description": _ERRORS[status], "content": _json(schema)}
    return responses


def _parameters(endpoint: Endpoint, settings: Settings) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = []
    if "{name}" in endpoint.path:
        geo = [proxy.name for proxy in settings.proxies if proxy.geo]
        parameters.append(
            {
                "name": "name",
                "in": "path",
                "required": True,
                "description": "a geo proxy's name",
                "schema": {"type": "string", "enum": geo} if geo else {"type": "string"},
            }
        )
    if endpoint.method == "GET" and endpoint.form is not None:
        for name, field in endpoint.form.fields.items():
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": field.required,
                    "description": field.description,
                    "schema": dict(field.schema),
                }
            )
    return parameters


def _operation(endpoint: Endpoint, settings: Settings) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": getattr(endpoint.operation, "__name__", endpoint.path),
        "summary": endpoint.summary,
        "tags": ["meshproxy extensions" if endpoint.extension else "ProxyMesh API"],
        "responses": _responses(endpoint),
    }
    parameters = _parameters(endpoint, settings)
    if parameters:
        operation["parameters"] = parameters
    if endpoint.method == "POST" and endpoint.form is not None:
        schema = _fields_schema(endpoint.form)
        operation["requestBody"] = {
            "required": bool(schema.get("required")),
            "content": {
                "application/x-www-form-urlencoded": {"schema": schema},
                "multipart/form-data": {"schema": schema},
            },
        }
    return operation


def openapi_document(settings: Settings) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(
            endpoint, settings
        )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "meshproxy management API",
            "version": __version__,
            "description": (
                "Wire-compatible with the ProxyMesh API. Every request is authenticated with "
                "HTTP Basic using a parent account's credentials. POST parameters go in a "
                "form-encoded body, GET parameters in the query string. Paths end with a "
                "slash; without it the answer is a 308 redirect to the slashed path."
            ),
        },
        "servers": [{"url": "/"}],  # wherever the document was fetched from
        "security": [{"basicAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
            "schemas": SCHEMAS,
        },
    }
