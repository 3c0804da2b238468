"""Typed values the API returns: sub-account details and a page of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshproxy.client.errors import UnexpectedBody
from meshproxy.client.numbers import gigabytes

OPTIONAL_TEXT = ("first_name", "last_name", "email")


@dataclass(frozen=True)
class SubAccount:
    """The spec's sub-account details. Bandwidth in GB (10^9 bytes; a float that prints in
    fixed notation, `Gigabytes`); a limit of 0 = none."""

    username: str
    active: bool
    monthly_bandwidth: float
    monthly_bandwidth_limit: int
    total_bandwidth: float
    total_bandwidth_limit: int
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None

    def __post_init__(self) -> None:
        for name in ("monthly_bandwidth", "total_bandwidth"):  # however it was built
            object.__setattr__(self, name, gigabytes(getattr(self, name)))

    @classmethod
    def from_json(cls, data: Any) -> SubAccount:
        body = _mapping(data, "sub-account details")
        try:
            return cls(
                username=str(body["username"]),
                active=_boolean(body["active"]),
                monthly_bandwidth=float(body["monthly_bandwidth"]),
                monthly_bandwidth_limit=_whole_gb(body.get("monthly_bandwidth_limit", 0)),
                total_bandwidth=float(body["total_bandwidth"]),
                total_bandwidth_limit=_whole_gb(body.get("total_bandwidth_limit", 0)),
                **{name: str(body[name]) for name in OPTIONAL_TEXT if body.get(name)},
            )
        except KeyError as missing:
            raise UnexpectedBody(f"sub-account details lack {missing}") from None
        except (TypeError, ValueError) as error:
            raise UnexpectedBody(f"bad sub-account details: {error}") from None

    def to_json(self) -> dict[str, Any]:
        """The details object as the API sends it (optional names only when set)."""
        data: dict[str, Any] = {
            "username": self.username,
            "active": self.active,
            "monthly_bandwidth": self.monthly_bandwidth,
            "monthly_bandwidth_limit": self.monthly_bandwidth_limit,
            "total_bandwidth": self.total_bandwidth,
            "total_bandwidth_limit": self.total_bandwidth_limit,
        }
        data.update({name: getattr(self, name) for name in OPTIONAL_TEXT if getattr(self, name)})
        return data

    @property
    def monthly_remaining(self) -> float | None:
        """GB left this billing period; None when there is no monthly limit."""
        return _remaining(self.monthly_bandwidth, self.monthly_bandwidth_limit)

    @property
    def total_remaining(self) -> float | None:
        """GB left of the total limit; None when there is no total limit."""
        return _remaining(self.total_bandwidth, self.total_bandwidth_limit)

    @property
    def over_limit(self) -> bool:
        """True when a limit is reached: the proxies answer this account with 509."""
        return any(left is not None and left <= 0 for left in (
            self.monthly_remaining,
            self.total_remaining,
        ))


@dataclass(frozen=True)
class SubAccountPage:
    """One page of `GET /api/sub/list/` (meshproxy's extension), ordered by username."""

    sub_accounts: list[SubAccount]
    total: int
    offset: int
    limit: int

    @classmethod
    def from_json(cls, data: Any) -> SubAccountPage:
        body = _mapping(data, "sub-account page")
        try:
            return cls(
                sub_accounts=[SubAccount.from_json(item) for item in body["sub_accounts"]],
                total=int(body["total"]),
                offset=int(body["offset"]),
                limit=int(body["limit"]),
            )
        except KeyError as missing:
            raise UnexpectedBody(f"sub-account page lacks {missing}") from None
        except TypeError as error:
            raise UnexpectedBody(f"bad sub-account page: {error}") from None

    @property
    def next_offset(self) -> int | None:
        """Where the next page starts, or None after the last one."""
        following = self.offset + len(self.sub_accounts)
        return following if self.sub_accounts and following < self.total else None


@dataclass(frozen=True)
class DayStats:
    """One day of `GET /api/sub/stats/` (meshproxy's extension): `counters` has
    `requests`, `bytes` and one count per outcome (`proxy_4xx`, `origin_2xx`, ...);
    `hosts` the destination hosts by bytes, most first."""

    day: str
    counters: dict[str, int]
    hosts: list[tuple[str, int]]

    @classmethod
    def from_json(cls, data: Any) -> DayStats:
        body = _mapping(data, "a day of request statistics")
        try:
            hosts = [(str(h["host"]), int(h["bytes"])) for h in body["hosts"]]
            counters = {
                str(name): int(value)
                for name, value in body.items()
                if name not in ("day", "hosts")
            }
            return cls(day=str(body["day"]), counters=counters, hosts=hosts)
        except KeyError as missing:
            raise UnexpectedBody(f"a day of request statistics lacks {missing}") from None
        except (TypeError, ValueError) as error:
            raise UnexpectedBody(f"bad request statistics: {error}") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day,
            **self.counters,
            "hosts": [{"host": host, "bytes": nbytes} for host, nbytes in self.hosts],
        }


def _mapping(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise UnexpectedBody(f"expected {what} as a JSON object, got {type(data).__name__}")
    return data


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise UnexpectedBody(f"expected true or false, got {value!r}")


def _whole_gb(value: Any) -> int:
    number = float(value)
    if not number.is_integer():
        raise UnexpectedBody(f"expected a whole number of GB, got {value!r}")
    return int(number)


def _remaining(used: float, limit: int) -> float | None:
    return None if limit == 0 else gigabytes(limit - used)
