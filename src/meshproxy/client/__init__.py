"""A Python client for the ProxyMesh API, as meshproxy serves it (and ProxyMesh itself).

`Client` blocks, `AsyncClient` awaits; both have one method per endpoint, return typed values
(`SubAccount`, lists, dicts) and raise one `ApiError` subclass per error status. This package
imports nothing of the meshproxy server: it works alone, against any compatible endpoint.
"""

from meshproxy.client import calls
from meshproxy.client.aio import AsyncClient
from meshproxy.client.calls import SubAccountFields
from meshproxy.client.connection import Verify
from meshproxy.client.errors import (
    ApiError,
    AuthenticationFailed,
    CertificateNotTrusted,
    ClientError,
    Forbidden,
    FormError,
    HttpsRequired,
    MethodNotAllowed,
    NetworkError,
    NotFound,
    PaymentRequired,
    PlanUnavailable,
    ServerError,
    UnexpectedBody,
    UnexpectedResponse,
)
from meshproxy.client.models import DayStats, SubAccount, SubAccountPage
from meshproxy.client.protocol import NO_RETRIES, RetryPolicy
from meshproxy.client.sync import Client

__all__ = [
    "NO_RETRIES",
    "ApiError",
    "AsyncClient",
    "AuthenticationFailed",
    "CertificateNotTrusted",
    "Client",
    "ClientError",
    "DayStats",
    "Forbidden",
    "FormError",
    "HttpsRequired",
    "MethodNotAllowed",
    "NetworkError",
    "NotFound",
    "PaymentRequired",
    "PlanUnavailable",
    "RetryPolicy",
    "ServerError",
    "SubAccount",
    "SubAccountFields",
    "SubAccountPage",
    "UnexpectedBody",
    "UnexpectedResponse",
    "Verify",
    "calls",
]
