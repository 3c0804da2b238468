"""meshproxy: a self-hosted rotating proxy service, wire-compatible with the ProxyMesh API."""

__version__ = "0.1.0"
