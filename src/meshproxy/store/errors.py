# What a caller is told while the store cannot be reached (API, dashboard, control layer).
STORE_DOWN = "The account database is unreachable. Please try again in a few minutes."


class StoreError(Exception):
    """Base for store errors that callers map to answers."""


class StoreUnavailable(StoreError):
    """The database cannot be reached (or is locked/full); callers answer 503 and retry."""


class SharedUnavailable(StoreError):
    """A part the nodes share outside the database (Redis) cannot be reached: the
    database's tables stand in for it (logged by the part, in its health)."""


class Conflict(StoreError):
    """A uniqueness rule would be broken (username, IP or hostname already taken)."""


class LimitReached(StoreError):
    """The parent already has as many as it may (sub-accounts, authorized proxies): nothing
    was written. Checked and written in one transaction, so racing writes cannot both pass."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"limit of {limit} reached")
        self.limit = limit
