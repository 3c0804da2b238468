"""Where shared usage lives in Redis. Every key carries the `{usage}` hash tag, so the
scripts that touch several of them stay within one slot of a Redis Cluster.

    <p>{usage}:day:<YYYY-MM-DD>      hash "<account>:<parent>" -> bytes not yet folded
    <p>{usage}:days                  set of days with such a hash
    <p>{usage}:cum                   hash "<account>" -> bytes ever counted (parents include
                                     their sub-accounts); never decreases
    <p>{usage}:batch:<day>:<id>      a day hash claimed by a folder, until it is folded
    <p>{usage}:pending               set of batch keys claimed and not yet deleted
    <p>{usage}:node:<node id>        the last flush sequence number a meter applied
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


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
    def cumulative(self) -> str:
        return f"{self.base}cum"

    @property
    def pending(self) -> str:
        return f"{self.base}pending"

    @property
    def batch_prefix(self) -> str:
        return f"{self.base}batch:"

    def node(self, node_id: str) -> str:
        return f"{self.base}node:{node_id}"

    def batch_day(self, batch_key: str) -> date:
        """The day of a batch key `<batch_prefix><day>:<id>`."""
        return date.fromisoformat(batch_key.removeprefix(self.batch_prefix).split(":", 1)[0])

    def batch_id(self, batch_key: str) -> str:
        """What the store remembers a folded batch by (unique per claim)."""
        return batch_key.removeprefix(self.batch_prefix)


def field(account_id: int, parent_id: int | None) -> str:
    return f"{account_id}:{'' if parent_id is None else parent_id}"


def parse_field(name: str) -> tuple[int, int | None]:
    account, _, parent = name.partition(":")
    return int(account), (int(parent) if parent else None)
