"""The ProxyMesh-compatible management API: a Starlette app over the control layer."""

from meshproxy.api.app import create_app

__all__ = ["create_app"]
