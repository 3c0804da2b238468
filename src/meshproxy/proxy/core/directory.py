"""The account directory of a proxy node: every decision about a client, made from memory.

Loaded from `store.accounts.views` and kept current by the sync loop (`sync.py`); this
module is pure (callers pass the time), so the decisions are tested with a fake clock.
Live usage = the store's figure when the account was (re)loaded + bytes counted since,
whether flushed yet or not (the loader passes the meter's unflushed bytes). With shared
counters (Redis), bytes counted by every node are added too: the counter minus what the
store had folded of it at load (`apply_shared`), so limits hold across nodes.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal, NamedTuple

from meshproxy.domain.accounts import AccountView
from meshproxy.domain.addresses import hostname_address_refused, networks
from meshproxy.domain.bans import BanBook, BanPolicy
from meshproxy.domain.basic_auth import parse_basic
from meshproxy.domain.billing import billing_period
from meshproxy.domain.limits import Limits, Usage, check_quota
from meshproxy.domain.passwords import (
    MAX_VERIFICATIONS_IN_FLIGHT,
    VerifiedCredentials,
    decoy_hash,
)
from meshproxy.domain.units import GB
from meshproxy.domain.usage import counted_for
from meshproxy.proxy.core import errors
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.readthrough import StoreLookups
from meshproxy.proxy.core.username import Logins
from meshproxy.proxy.core.verifications import SharedVerification, VerificationSlots

# Proxy-Authorization fingerprints remembered (the oldest dropped first).
MAX_AUTHORIZED: Final = 100_000


@dataclass(eq=False, slots=True)
class AccountState:
    """One account as the data plane sees it; updated in place so live references stay valid."""

    id: int
    username: str
    parent_id: int | None
    password_hash: str | None
    active: bool
    limits: Limits
    proxies: frozenset[str]
    ips: tuple[str, ...]
    hostnames: tuple[str, ...]
    billing_day: int | None
    hostname_ids: tuple[int, ...] = ()  # AccountView.hostname_ids
    monthly_bytes: int = 0
    total_bytes: int = 0
    parent: AccountState | None = None
    removed: bool = False
    # The store's figures at the last (re)load, for recomputing live usage from counters.
    loaded_monthly: int = 0
    loaded_total: int = 0
    loaded_folded: int = 0

    def set_live(self, cumulative: int | None, pending: int) -> None:
        """Live usage = loaded + shared bytes not folded at load (+ this node's unsent)."""
        unfolded = 0 if cumulative is None else max(0, cumulative - self.loaded_folded)
        self.monthly_bytes = self.loaded_monthly + unfolded + pending
        self.total_bytes = self.loaded_total + unfolded + pending

    def add_usage(self, nbytes: int) -> None:
        for account in counted_for(self, self.parent, nbytes):
            account.monthly_bytes += nbytes
            account.total_bytes += nbytes

    def allowance(self) -> int | None:
        """Bytes this account may still move before it reaches a limit of its own or of its
        parent's (None: no limit; 0 or less: reached)."""
        left: int | None = None
        parent = self.parent
        for limits, monthly, total in (
            (self.limits, self.monthly_bytes, self.total_bytes),
            (None, 0, 0) if parent is None else
            (parent.limits, parent.monthly_bytes, parent.total_bytes),
        ):
            if limits is None:
                continue
            if limits.monthly_gb:
                room = limits.monthly_gb * GB - monthly
                left = room if left is None else min(left, room)
            if limits.total_gb:
                room = limits.total_gb * GB - total
                left = room if left is None else min(left, room)
        return left

    def charge(self, nbytes: int) -> bool:
        """Count `nbytes` moved; True when that reaches a limit (the caller cuts the
        connection now, not at the next sweep: one fast connection overshoots by at most
        one read buffer)."""
        self.add_usage(nbytes)
        if not self.limited:
            return False
        left = self.allowance()
        return left is not None and left <= 0

    @property
    def limited(self) -> bool:
        """Has a monthly or total limit of its own or through its parent."""
        parent = self.parent
        return bool(
            self.limits.monthly_gb
            or self.limits.total_gb
            or (parent is not None and (parent.limits.monthly_gb or parent.limits.total_gb))
        )

    def quota_refusal(self) -> ProxyError | None:
        parent = self.parent
        if not (self.limits.monthly_gb or self.limits.total_gb) and (
            parent is None or not (parent.limits.monthly_gb or parent.limits.total_gb)
        ):
            return None
        over = check_quota(
            Usage(self.monthly_bytes, self.total_bytes),
            self.limits,
            None if parent is None else Usage(parent.monthly_bytes, parent.total_bytes),
            None if parent is None else parent.limits,
        )
        return None if over is None else errors.over_quota(over.reason())


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    """Credentials not verified before: the caller verifies them off the event loop."""

    username: str
    password: str
    password_hash: str
    client_ip: str
    # Fingerprint of the raw header value, remembered once it verifies (None: never).
    authorization_key: int | None = None
    # The verification it waits for (shared with the same header's other requests).
    shared: SharedVerification | None = field(default=None, compare=False)
    # The directory held no password for the username (verified against a decoy, unless
    # the store's read-through finds the account).
    unknown: bool = False
    # The username as sent, when it was read as `username` plus options: an account of
    # that whole name created a moment ago is looked up before the check fails.
    whole: str | None = None


class AuthReport(NamedTuple):
    """An authentication outcome for the store's shared ban count, stamped with when it
    happened (failures count in that order whichever face or node saw them), or a ban
    this node decided then, written to the store for every face."""

    kind: Literal["failure", "success", "ban"]
    ip: str
    at: float


class AccountDirectory:
    def __init__(
        self,
        ban_policy: BanPolicy,
        credentials: VerifiedCredentials | None = None,
        max_verifying: int = MAX_VERIFICATIONS_IN_FLIGHT,
        hostname_networks: Iterable[str] = (),
        bans: BanBook | None = None,
    ) -> None:
        self.by_username: dict[str, AccountState] = {}
        self.by_id: dict[int, AccountState] = {}
        self.credentials = credentials or VerifiedCredentials()
        # The ban book; the node passes the one its process shares with the API (store.py).
        self.bans = bans if bans is not None else BanBook(ban_policy)
        # Outcomes for the store's shared ban count, in order; drained by the node.
        self.auth_reports: deque[AuthReport] = deque(maxlen=100_000)
        self.next_reset = math.inf  # when the earliest billing period ends (epoch s)
        # For metrics: requests decided per proxy (`decide`; not the sweep's re-checks of
        # open connections, which ask `refusal`), authentication failures.
        self.requests: defaultdict[str, int] = defaultdict(int)
        self.auth_failures = 0
        self.verifications_refused = 0  # requests refused 503: too many checks under way
        self._ip_accounts: dict[str, AccountState] = {}
        self._hostname_addresses: dict[str, tuple[str, ...]] = {}
        self._resolved_accounts: dict[str, AccountState] = {}
        # Non-public networks a hostname may resolve to and still authenticate.
        self._hostname_networks = networks(hostname_networks)
        # Proxy-Authorization values that verified, by fingerprint -> (account, the hash
        # they verified against): a repeat costs one hash and one dict lookup, no base64 and
        # no HMAC. A fingerprint, not the value: a memory dump of the node holds no
        # passwords. The fingerprint is Python's own `hash` of the bytes: SipHash keyed by
        # the interpreter's random per-process seed (64 bits: a forged match would take
        # ~2^47 tries against 100,000 remembered entries, each miss an argon2 check and a
        # failure toward a ban), about 25 ns where a keyed BLAKE2b cost 300 ns and 6 % of the
        # small-request throughput. An entry misses once the password changes or the
        # account is removed (a re-created account is a new state). Never keyed by client
        # IP: the credentials themselves are the key.
        self._authorized: dict[int, tuple[AccountState, str]] = {}
        # Argon2 checks under way (queued or running), by (header fingerprint, hash): taken on
        # the event loop in `authenticate`, freed by `verify` in its executor thread.
        self.verifications = VerificationSlots(max_verifying)
        # The store's read-through for credentials not known here yet (set by the node).
        self.read_through: StoreLookups | None = None
        # Usernames with options (username.py): `alice-country-us` checks alice's password.
        self.logins = Logins(self.by_username, parse_basic)

    # ---- loading ------------------------------------------------------------------------

    def load(
        self,
        views: Iterable[AccountView],
        now: datetime,
        pending: Mapping[int, int],
        shared: Mapping[int, int] | None = None,
    ) -> None:
        """Replace everything with `views` (all accounts)."""
        views = list(views)
        present = {v.account.username for v in views}
        for name in [n for n in self.by_username if n not in present]:
            self._remove(name)
        for view in views:
            self._upsert(view, pending, shared or {})
        self._relink(all_accounts=True)
        self._reindex(now)
        if self.read_through is not None:
            self.read_through.forget(present)

    def update(
        self,
        usernames: Iterable[str],
        views: Iterable[AccountView],
        now: datetime,
        pending: Mapping[int, int],
        shared: Mapping[int, int] | None = None,
    ) -> None:
        """Apply a reload of `usernames`; those missing from `views` were deleted."""
        usernames = set(usernames)
        by_name = {v.account.username: v for v in views}
        new_parent = False
        for name in usernames | set(by_name):
            view = by_name.get(name)
            if view is None:
                self._remove(name)
            else:
                existing = self.by_username.get(name)
                new_parent |= view.account.parent_id is None and (
                    existing is None or existing.id != view.account.id
                )
                self._upsert(view, pending, shared or {})
        self._relink(all_accounts=new_parent, names=by_name)
        self._reindex(now)
        if self.read_through is not None:
            self.read_through.forget({*usernames, *by_name})

    def apply_shared(self, cumulative: Mapping[int, int], pending: Mapping[int, int]) -> None:
        """Adopt fresh shared counters (every node's bytes) for these account ids."""
        by_id = self.by_id
        for account_id, value in cumulative.items():
            state = by_id.get(account_id)
            if state is not None:
                state.set_live(value, pending.get(account_id, 0))

    def _upsert(
        self, view: AccountView, pending: Mapping[int, int], shared: Mapping[int, int]
    ) -> None:
        record = view.account
        state = self.by_username.get(record.username)
        if state is not None and state.id != record.id:
            self._remove(record.username)
            state = None
        if state is None:
            state = AccountState(
                id=record.id,
                username=record.username,
                parent_id=record.parent_id,
                password_hash=record.password_hash,
                active=record.active,
                limits=record.limits,
                proxies=frozenset(view.proxies),
                ips=view.ips,
                hostnames=view.hostnames,
                billing_day=record.billing_day,
                hostname_ids=view.hostname_ids,
            )
            self.by_username[record.username] = state
            self.by_id[record.id] = state
            if "-" in record.username:  # it now wins over the options it reads as
                for key in self.logins.forget(record.username):
                    self._authorized.pop(key, None)
        else:
            state.parent_id = record.parent_id
            state.password_hash = record.password_hash
            state.active = record.active
            state.limits = record.limits
            state.proxies = frozenset(view.proxies)
            state.ips = view.ips
            state.hostnames = view.hostnames
            state.hostname_ids = view.hostname_ids
            state.billing_day = record.billing_day
        state.loaded_monthly = view.monthly_bytes
        state.loaded_total = view.total_bytes
        state.loaded_folded = view.folded_bytes
        state.set_live(shared.get(record.id), pending.get(record.id, 0))

    def _remove(self, username: str) -> None:
        state = self.by_username.pop(username, None)
        if state is None:
            return
        state.removed = True
        self.by_id.pop(state.id, None)

    def _relink(self, *, all_accounts: bool, names: Iterable[str] = ()) -> None:
        states = (
            self.by_username.values()
            if all_accounts
            else [s for n in names if (s := self.by_username.get(n)) is not None]
        )
        for state in states:
            state.parent = None if state.parent_id is None else self.by_id.get(state.parent_id)

    def _reindex(self, now: datetime) -> None:
        self._ip_accounts = {ip: s for s in self.by_username.values() for ip in s.ips}
        self._reindex_hostnames()
        ends = [
            billing_period(s.billing_day, now).end_datetime().timestamp()
            for s in self.by_username.values()
            if s.parent_id is None and s.billing_day
        ]
        self.next_reset = min(ends, default=math.inf)

    # ---- authenticated hostnames ----------------------------------------------------------

    def hostnames(self) -> set[str]:
        return {h for s in self.by_username.values() for h in s.hostnames}

    def set_hostname_addresses(self, resolved: Mapping[str, tuple[str, ...]]) -> None:
        """Adopt fresh resolutions (hostname -> addresses); names no account holds are dropped."""
        self._hostname_addresses.update(resolved)
        self._reindex_hostnames()

    def _reindex_hostnames(self) -> None:
        held = self.hostnames()
        for name in [h for h in self._hostname_addresses if h not in held]:
            del self._hostname_addresses[name]
        # Each held hostname's account and rank (its row id: the order hostnames were added
        # in over all accounts; None when the view did not say).
        owners: dict[str, tuple[AccountState, int | None]] = {}
        for state in self.by_username.values():
            ranks = state.hostname_ids if len(state.hostname_ids) == len(state.hostnames) else ()
            for index, name in enumerate(state.hostnames):
                owners[name] = (state, ranks[index] if ranks else None)
        claims: defaultdict[str, dict[int, int | None]] = defaultdict(dict)  # ip -> id: rank
        for name, ips in self._hostname_addresses.items():
            state, rank = owners[name]
            for ip in ips:
                if ip in self._ip_accounts:
                    continue  # another account's IP (or this one's: the IP decides)
                if hostname_address_refused(ip, self._hostname_networks) is not None:
                    continue
                claimed = claims[ip]
                earlier = claimed.get(state.id, rank)
                claimed[state.id] = rank if earlier is None or rank is None else min(earlier, rank)
        # One address means one account: an address another account holds as an IP is that
        # account's; one that hostnames of several accounts resolve to is the account's
        # whose hostname was added first (nobody's when that is not known).
        resolved: dict[str, AccountState] = {}
        for ip, claimants in claims.items():
            if len(claimants) == 1:
                resolved[ip] = self.by_id[next(iter(claimants))]
            elif None not in claimants.values():
                first = min(claimants.items(), key=lambda claim: claim[1] or 0)[0]
                resolved[ip] = self.by_id[first]
        self._resolved_accounts = resolved

    # ---- decisions ------------------------------------------------------------------------

    def authenticate(
        self, client_ip: str, authorization: bytes | None, now: float
    ) -> AccountState | CredentialCheck | ProxyError:
        """Who this request is from. Credentials win over the client IP when both apply."""
        if self.bans.is_banned(client_ip, now):
            return errors.banned()
        if authorization is not None:
            key = hash(authorization)
            hit = self._authorized.get(key)
            if hit is not None:
                known, password_hash = hit
                if known.password_hash == password_hash and not known.removed:
                    if self.bans.counting:
                        self._success(client_ip, now)
                    return known
                del self._authorized[key]
            credentials = parse_basic(authorization)
            if credentials is None:
                self._failure(client_ip, now)
                return errors.auth_required("malformed proxy credentials")
            username, password = credentials
            sent = username
            account = self.by_username.get(username)
            if account is None and "-" in username:
                username = self.logins.account_name(username, key)
                account = self.by_username.get(username)
            whole = sent if username != sent else None
            if account is None or not account.password_hash:
                # Verified against a decoy (and so refused in `verified`) in the same time a
                # wrong password takes: the answer's timing does not tell who exists.
                return self._check(username, password, decoy_hash(), client_ip, key, now,
                                   unknown=True, whole=whole)
            if self.credentials.known(username, password, account.password_hash):
                self._success(client_ip, now)
                self._remember(key, account, account.password_hash)
                return account
            return self._check(username, password, account.password_hash, client_ip, key, now,
                               whole=whole)
        account = self._ip_accounts.get(client_ip) or self._resolved_accounts.get(client_ip)
        if account is None:
            return errors.auth_required()
        return account

    def _check(
        self,
        username: str,
        password: str,
        password_hash: str,
        client_ip: str,
        header_key: int,
        now: float,
        *,
        unknown: bool = False,
        whole: str | None = None,
    ) -> CredentialCheck | ProxyError:
        """A check of these credentials, sharing the verification of this header under way
        or a new one if fewer than `max_verifying` are under way; else a refusal at once.

        Bounds the argon2 work a flood of new or wrong credentials (from any number of IPs)
        can queue on this node: the wait of a new client's first check, the executor queue
        and argon2's memory (64 MiB per running check).
        Remembered credentials never get here. The refusal says nothing about the
        credentials (503, not 407) and counts no failure: they were not checked."""
        shared = self.verifications.take((header_key, password_hash), now)
        if shared is None:
            self.verifications_refused += 1
            return errors.verifications_busy()
        return CredentialCheck(
            username, password, password_hash, client_ip, header_key, shared, unknown, whole
        )

    def verify(self, check: CredentialCheck) -> bool:
        """The slow part (argon2); thread-safe, run it in an executor, once per check that
        `authenticate` handed out (the first of a shared verification runs argon2 and frees
        its place; the others wait for its answer)."""
        def run() -> bool:
            return self._verify(check)

        return run() if check.shared is None else self.verifications.run(check.shared, run)

    def _verify(self, check: CredentialCheck) -> bool:
        """Against the hash the directory knows; failing that, against the store's (one
        read-through lookup, see readthrough.py): an account created or a password changed
        a moment ago works at once, before the change feed brings it. A username read as
        an account plus options that does not verify so may be an account of its own,
        created a moment ago (`pm_a-country-us`): the store is asked for the whole name."""
        if self._verify_named(check):
            return True
        lookups = self.read_through
        if check.whole is None or lookups is None:
            return False
        view = lookups.fetch(check.whole)
        return view is not None and bool(view.account.password_hash) and self._verify_found(
            check, view
        )

    def _verify_named(self, check: CredentialCheck) -> bool:
        lookups = self.read_through
        credentials = self.credentials
        if check.unknown and lookups is not None:
            view = lookups.fetch(check.username)
            if view is not None and view.account.password_hash:
                return self._verify_found(check, view)
        if credentials.check(check.username, check.password, check.password_hash):
            return not check.unknown  # a decoy never verifies an account
        if lookups is None or check.unknown:
            return False
        view = lookups.fetch(check.username)
        if view is None or view.account.password_hash in (None, check.password_hash):
            return False
        return self._verify_found(check, view)

    def _verify_found(self, check: CredentialCheck, view: AccountView) -> bool:
        record = view.account  # check.username's, or the whole name's (`_verify`)
        if not self.credentials.check(record.username, check.password, record.password_hash):
            return False
        if check.shared is not None:
            check.shared.found = view  # every caller of this verification adopts it
        return True

    def verified(self, check: CredentialCheck, ok: bool, now: float) -> AccountState | ProxyError:
        """Finish `authenticate` once `verify` has answered."""
        password_hash = check.password_hash
        found = None if check.shared is None else check.shared.found
        if ok and isinstance(found, AccountView) and found.account.password_hash:
            self._adopt(found, check)
            password_hash = found.account.password_hash
        name = found.account.username if ok and isinstance(found, AccountView) else None
        account = self.by_username.get(name or check.username)
        if ok and account is not None and account.password_hash == password_hash:
            self._success(check.client_ip, now)
            if check.authorization_key is not None:
                self._remember(check.authorization_key, account, password_hash)
            return account
        self._failure(check.client_ip, now)
        return errors.auth_required("invalid proxy credentials")

    def _adopt(self, view: AccountView, check: CredentialCheck) -> None:
        """Take the store's account (read through) ahead of the change feed, unless the
        directory changed since the check began (then the feed's figure is newer). Only
        the account and its password: its usage, IPs and hostnames come with the feed."""
        record = view.account
        state = self.by_username.get(record.username)
        if state is not None and state.id == record.id:
            known = None if check.unknown else check.password_hash
            if state.password_hash == known:
                state.password_hash = record.password_hash
            return
        if state is None or check.unknown:
            self._upsert(view, {}, {})
            self._relink(all_accounts=False, names=[record.username])

    def _remember(self, key: int, account: AccountState, password_hash: str) -> None:
        if len(self._authorized) >= MAX_AUTHORIZED:
            self._authorized.pop(next(iter(self._authorized)))
        self._authorized[key] = (account, password_hash)

    def decide(self, account: AccountState, proxy: str) -> ProxyError | None:
        """`refusal` for a new request (or tunnel), counted for the proxy's metrics."""
        self.requests[proxy] += 1
        return self.refusal(account, proxy)

    def refusal(self, account: AccountState, proxy: str) -> ProxyError | None:
        """Why `account` may not use `proxy` now (None: it may)."""
        if account.removed:
            return errors.auth_required("account no longer exists")
        parent = account.parent
        if not account.active or (parent is not None and not parent.active):
            return errors.deactivated()
        if proxy not in account.proxies:
            return errors.not_authorized_on_proxy(proxy)
        return account.quota_refusal()

    # ---- the ban --------------------------------------------------------------------------

    def _failure(self, ip: str, now: float) -> None:
        self.auth_failures += 1
        self.auth_reports.append(AuthReport("failure", ip, now))
        if self.bans.record_failure(ip, now) is not None:
            # Banned here: written to the store for every face and node.
            self.auth_reports.append(AuthReport("ban", ip, now))

    def _success(self, ip: str, now: float) -> None:
        if self.bans.failing(ip) and self.bans.record_success(ip):
            self.auth_reports.append(AuthReport("success", ip, now))

    def apply_bans(self, ips: Iterable[str], active: Mapping[str, float]) -> None:
        """The store's verdict on `ips` (from "ban" changes): banned until, or not banned."""
        for ip in ips:
            until = active.get(ip)
            if until is None:
                self.bans.unban(ip)
            else:
                self.bans.ban(ip, until)

    def prune(self, now: float) -> None:
        self.bans.prune(now)
