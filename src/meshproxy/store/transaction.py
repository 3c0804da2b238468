"""Transactions over one engine, in SQLAlchemy Core (no ORM session): each is a connection
in BEGIN, and the change notes it wrote, announced once it commits.

Database outages surface as `StoreUnavailable`, uniqueness clashes as `Conflict`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, Executable, Row, ScalarResult, Table
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from meshproxy.store.dialect import insert_for
from meshproxy.store.engine import lock_for_writing
from meshproxy.store.errors import Conflict, StoreUnavailable

# (kind, subject) of a change row: ("account", username) or ("ban", ip)
Note = tuple[str, str]
# What a statement returns, and one row of it, columns of any types.
Rows = CursorResult[*tuple[Any, ...]]
AnyRow = Row[*tuple[Any, ...]]


@dataclass
class Transaction:
    """One transaction's connection, and the change rows it wrote (`ChangeFeed.note`)."""

    connection: Connection
    notes: list[Note] = field(default_factory=list)

    def execute(self, statement: Executable, parameters: Any = None) -> Rows:
        return self.connection.execute(statement, parameters)

    def scalar(self, statement: Executable) -> Any:
        return self.connection.scalar(statement)

    def scalars(self, statement: Executable) -> ScalarResult[Any]:
        return self.connection.scalars(statement)

    def insert(self, table: Table) -> Any:
        """The dialect's INSERT into `table`, which has ON CONFLICT."""
        return insert_for(self.connection.dialect.name, table)


class Database:
    """The engine every repository of one store shares, and its transactions. `announce`
    is told the notes of each commit that wrote change rows (Redis pub/sub, when shared)."""

    def __init__(self, engine: Engine, announce: Callable[[list[Note]], None] | None = None):
        self.engine = engine
        self.announce = announce

    @contextmanager
    def transaction(self, *, locked: bool = False) -> Iterator[Transaction]:
        """One transaction. `locked`: it checks a count before writing, so on SQLite it
        holds the write lock from its start (PostgreSQL locks rows: SELECT ... FOR UPDATE)."""
        try:
            with self.engine.begin() as connection:
                if locked:
                    lock_for_writing(connection)
                transaction = Transaction(connection)
                yield transaction
        except IntegrityError as error:
            raise Conflict(str(error.orig)) from error
        except (OperationalError, DBAPIError) as error:
            raise StoreUnavailable(str(error.orig or error)) from error
        if transaction.notes and self.announce is not None:
            self.announce(transaction.notes)
