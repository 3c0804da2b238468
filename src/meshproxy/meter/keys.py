"""Where shared usage lives in Redis. Every key carries the `{usage}` hash tag, so the
scripts that touch several of them stay within one slot of a Redis Cluster.

    <p>{usage}:day:<YYYY-MM-DD>:<meter>  hash "<account>:<parent>" -> bytes not yet folded,
                                         "s:<account>:<name>" -> a request statistic
                                         (domain/stats.py) of the same flushes,
                                         "#first"/"#last" -> the meter's flush numbers in it,
                                         "#gen" -> their generation
    <p>{usage}:days                      set of "<day>:<meter>" with such a hash
    <p>{usage}:gen                       the generation: made anew when Redis lost data
    <p>{usage}:cum:<generation>          hash "<account>" -> bytes counted in this
                                         generation (parents include their sub-accounts)
    <p>{usage}:batch:<day>:<meter>:<id>  a day hash claimed by a folder, until it is folded
    <p>{usage}:pending                   set of batch keys claimed and not yet deleted
    <p>{usage}:node:<meter>              hash "seq" -> the last flush number applied,
                                         "folded" -> all up to this number are folded
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final


@dataclass(frozen=True)
class UsageKeys:
    prefix: str = "meshproxy:"

    @property
    def base(self) -> str:
        return f"{self.prefix}{{usage}}:"

    def day(self, day: date | str) -> str:
        return f"{self.base}day:{day}"

    @property
    def days(self) -> str:
        return f"{self.base}days"

    @property
    def generation(self) -> str:
        return f"{self.base}gen"

    @property
    def cumulative_prefix(self) -> str:
        return f"{self.base}cum:"

    def cumulative(self, generation: str) -> str:
        return self.cumulative_prefix + generation

    @property
    def pending(self) -> str:
        return f"{self.base}pending"

    @property
    def batch_prefix(self) -> str:
        return f"{self.base}batch:"

    def node(self, node_id: str) -> str:
        return f"{self.base}node:{node_id}"

    def batch_source(self, batch_key: str) -> tuple[date, str]:
        """The day and meter id of a batch key `<batch_prefix><day>:<meter>:<claim id>`.
        A batch of the format before meters (`<day>:<claim id>`, written by nodes of an
        earlier version) is its own meter, `legacy-<claim id>`: folded once per claim."""
        day, *rest = batch_key.removeprefix(self.batch_prefix).split(":")
        meter = rest[0] if len(rest) == 2 else f"legacy-{rest[0]}"
        return date.fromisoformat(day), meter


def field(account_id: int, parent_id: int | None) -> str:
    return f"{account_id}:{'' if parent_id is None else parent_id}"


STAT: Final = "s:"  # the day hash's fields of request statistics


def stat_field(account_id: int, name: str) -> str:
    return f"{STAT}{account_id}:{name}"


def parse_stat_field(text: str) -> tuple[int, str]:
    """(account id, statistic name) of a `stat_field` (names may hold colons: IPv6 hosts)."""
    account, _, name = text.removeprefix(STAT).partition(":")
    return int(account), name


def parse_field(name: str) -> tuple[int, int | None]:
    account, _, parent = name.partition(":")
    return int(account), (int(parent) if parent else None)


def decoded(value: bytes | str) -> str:
    """A Redis reply as text (clients may or may not decode)."""
    return value.decode() if isinstance(value, bytes) else value
