"""Proxy benchmark: meshproxy beside Squid, tinyproxy, proxy.py and a direct connection."""
