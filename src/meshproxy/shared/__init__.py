"""Live state shared through Redis by every node: the ban list and failure counts, and
change notifications. Imports domain, config and store (never api/web/control/proxy).

`SharedStore` is the Store with bans in Redis and each commit announced on a pub/sub
channel; every face that takes a Store (API, dashboard, proxies, admin CLI) gets them
without knowing. The store's change feed stays the source of truth for account changes.
"""

from meshproxy.shared.connect import async_client, sync_client
from meshproxy.shared.store import SharedStore, open_store

__all__ = ["SharedStore", "async_client", "open_store", "sync_client"]
