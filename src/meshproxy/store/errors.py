class StoreError(Exception):
    """Base for store errors that callers map to answers."""


class StoreUnavailable(StoreError):
    """The database cannot be reached (or is locked/full); callers answer 503 and retry."""


class Conflict(StoreError):
    """A uniqueness rule would be broken (username, IP or hostname already taken)."""
