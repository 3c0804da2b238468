"""Pure rules of the service: accounts, validation forms, billing periods, limits, usage
counting, bans, Basic credentials, password hashing, proxy names, folds. No I/O here: no
asyncio, sockets, threads, SQLAlchemy, Redis or HTTP clients (.importlinter checks)."""
