"""What the benchmark and cluster scripts share: loopback ports, and scratch space in the
local PostgreSQL (a schema) and Redis (a key prefix), made fresh and dropped afterwards."""

from __future__ import annotations

import os
import socket

import redis
import sqlalchemy as sa

POSTGRES = os.environ.get("MESHPROXY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("MESHPROXY_TEST_REDIS", "redis://127.0.0.1:6379/0")


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _admin_sql(statement: str, server: str = POSTGRES) -> None:
    engine = sa.create_engine(
        server.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as connection:
        connection.execute(sa.text(statement))
    engine.dispose()


def schema_url(schema: str, server: str = POSTGRES) -> str:
    """The database URL whose search path is `schema`."""
    separator = "&" if "?" in server else "?"
    return f"{server}{separator}options=-csearch_path%3D{schema}"


def create_schema(schema: str, server: str = POSTGRES) -> str:
    """Create `schema`; returns its `schema_url`."""
    _admin_sql(f'CREATE SCHEMA "{schema}"', server)
    return schema_url(schema, server)


def drop_scratch(
    schema: str, prefix: str, *, postgres: str = POSTGRES, redis_url: str = REDIS
) -> None:
    """Drop the schema and every Redis key under the prefix."""
    _admin_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE', postgres)
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
