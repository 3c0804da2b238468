"""Live state shared through Redis by every node, besides usage (meter/shared.py): the ban
list and failure counts (bans.py), change notifications (notify.py), the Redis clients
(connect.py) and SharedStore (store.py). Imports domain, config, store and meter (never
api/web/control/proxy).

`SharedStore` is the Store with bans in Redis and each commit announced on a pub/sub
channel; every face that takes a Store (API, dashboard, proxies, admin CLI) gets them
without knowing. The store's change feed stays the source of truth for account changes.
"""

from meshproxy.shared.connect import async_client, sync_client
from meshproxy.shared.store import SharedStore, open_store

__all__ = ["SharedStore", "async_client", "open_store", "sync_client"]
