"""The Store: the repositories of one database, over one engine.

Each repository is a small class holding one part of the data (`store.accounts`,
`store.bans`, ...); its methods are synchronous (call them from a thread in async code:
`anyio.to_thread` or `loop.run_in_executor`), and each is one transaction. Database outages
surface as `StoreUnavailable`, uniqueness clashes as `Conflict`, a plan's count reached
(checked in the writing transaction, so concurrent writes cannot overshoot it) as
`LimitReached`.

The nodes of a fleet share the ban (`SharedBans`) and hear of commits (`ChangeNotifier`)
through Redis: fleet/store.py passes both in; the store works the same without them.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, OperationalError

from meshproxy.store.access import AccessLists
from meshproxy.store.accounts import Accounts
from meshproxy.store.bans import Bans, SharedBans
from meshproxy.store.changes import ChangeFeed, ChangeNotifier
from meshproxy.store.engine import make_engine
from meshproxy.store.errors import StoreUnavailable
from meshproxy.store.folds import Folds
from meshproxy.store.migrate import upgrade
from meshproxy.store.stats import Stats
from meshproxy.store.transaction import Database
from meshproxy.store.usage import Usage

if TYPE_CHECKING:
    from meshproxy.store.alerts import Alerts
    from meshproxy.store.audit import AuditLog


class Store:
    def __init__(
        self,
        engine: Engine,
        *,
        notifier: ChangeNotifier | None = None,
        shared_bans: SharedBans | None = None,
    ) -> None:
        self.notifier = notifier
        db = Database(engine, announce=None if notifier is None else notifier.changed)
        self.accounts = Accounts(db)
        self.access = AccessLists(db)  # authenticated IPs and hostnames, authorized proxies
        self.usage = Usage(db)
        self.stats = Stats(db)
        self.folds = Folds(db)
        self.bans = Bans(db, shared_bans, notifier)
        self.changes = ChangeFeed(db, notifier)
        self._db = db

    # The API's and the dashboard's: made (and imported) at first use, so that a proxy
    # node, which never writes the audit log or an alert, loads neither.
    @cached_property
    def audit(self) -> AuditLog:
        from meshproxy.store.audit import AuditLog

        return AuditLog(self._db)

    @cached_property
    def alerts(self) -> Alerts:
        """Webhooks, usage notices, their deliveries."""
        from meshproxy.store.alerts import Alerts

        return Alerts(self._db)

    @property
    def engine(self) -> Engine:
        """The one engine of every repository (set anew, it moves them all)."""
        return self._db.engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        self._db.engine = engine

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        store = cls(make_engine(url))
        if migrate:
            store.migrate()
        return store

    def migrate(self) -> None:
        try:
            upgrade(self.engine)
        except (OperationalError, DBAPIError) as error:
            raise StoreUnavailable(str(error.orig or error)) from error

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        if self.notifier is not None:
            self.notifier.check()
        with self._db.transaction() as tx:
            tx.execute(select(1))
