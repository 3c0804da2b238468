"""The fleet: what the nodes share through Redis besides usage (meter/shared.py): the ban
list and failure counts (bans.py), change notifications (notify.py), the Redis clients
(connect.py) and one connection's health (link.py), and the store given them (store.py).
Imports domain, config, store and meter (never api/web/control/proxy).

`fleet_store` is the Store given the ban in Redis and a notifier announcing each commit
on a pub/sub channel; every face that takes a Store (API, dashboard, proxies, admin CLI)
gets them without knowing. The store's change feed stays the source of truth for account
changes.
"""

from meshproxy.fleet.connect import async_client, sync_client
from meshproxy.fleet.store import fleet_store, open_store

__all__ = ["async_client", "fleet_store", "open_store", "sync_client"]
