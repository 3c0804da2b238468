"""Live state shared through Redis by every node, besides usage (meter/shared.py): the ban
list and failure counts (bans.py), change notifications (notify.py), the Redis clients
(connect.py), their health (link.py) and the store that uses them (store.py). Imports
domain, config, store and meter (never api/web/control/proxy).

`shared_store` is the Store given the ban in Redis and a notifier announcing each commit
on a pub/sub channel; every face that takes a Store (API, dashboard, proxies, admin CLI)
gets them without knowing. The store's change feed stays the source of truth for account
changes.
"""

from meshproxy.shared.connect import async_client, sync_client
from meshproxy.shared.store import open_store, shared_store

__all__ = ["async_client", "open_store", "shared_store", "sync_client"]
