"""Authenticated IPs and hostnames, of the logged-in account and of a parent's
sub-accounts, through the same control operations as /api/ip/... and /api/hostname/..."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from meshproxy.control.access_lists import (
    add_hostname,
    add_ip,
    delete_hostname,
    delete_ip,
    list_hostnames,
    list_ips,
)
from meshproxy.control.common import Data, Operation
from meshproxy.control.errors import ControlError, NotFound
from meshproxy.domain.accounts import AccountRecord
from meshproxy.web.context import PREFIX, Ctx
from meshproxy.web.pages.common import FormErrors, acting_caller, form_errors

ACCESS_PATH = f"{PREFIX}/access/"


@dataclass(frozen=True)
class _Kind:
    field: str  # the form field, as in the API
    noun: str
    add: Operation[Any]
    delete: Operation[Any]


KINDS = {
    "ip": _Kind("ip", "IP address", add_ip, delete_ip),
    "hostname": _Kind("domain", "hostname", add_hostname, delete_hostname),
}


@dataclass(frozen=True)
class AccessLists:
    ips: list[str]
    hostnames: list[str]


def access_lists(ctx: Ctx, caller: AccountRecord, data: Data) -> AccessLists:
    settings, store, now = ctx.settings, ctx.store, ctx.now
    return AccessLists(
        ips=list_ips(settings, store, caller, data, now=now)["ips"],
        hostnames=list_hostnames(settings, store, caller, data, now=now)["domains"],
    )


@dataclass(frozen=True)
class AccessChange:
    form: str  # which form on the page posted: "ip_add", "hostname_delete", ...
    error: ControlError | None
    message: str

    @property
    def errors(self) -> dict[str, FormErrors]:
        return {} if self.error is None else {self.form: form_errors(self.error)}


def change_access(ctx: Ctx, caller: AccountRecord, target: Data) -> AccessChange:
    """Add or delete one IP or hostname (the path names which) of `target`."""
    kind = KINDS.get(ctx.param("kind"))
    action = ctx.param("action")
    if kind is None or action not in ("add", "delete"):
        raise NotFound("No such page.")
    form_name = f"{ctx.param('kind')}_{action}"
    value = ctx.form.get(kind.field, "")
    operation = kind.add if action == "add" else kind.delete
    try:
        operation(ctx.settings, ctx.store, caller, {kind.field: value, **target}, now=ctx.now)
    except ControlError as error:
        return AccessChange(form_name, error, "")
    done = "added" if action == "add" else "removed"
    return AccessChange(form_name, None, f"The {kind.noun} {value.strip()} was {done}.")


def _page(ctx: Ctx, errors: dict[str, FormErrors], status: int = 200) -> Response:
    caller, target = acting_caller(ctx)
    return ctx.render(
        "access.html",
        status=status,
        lists=access_lists(ctx, caller, target),
        errors=errors,
        action_base=f"{PREFIX}/access",
        client_ip=ctx.client_ip,
        values=ctx.form,
    )


def access(ctx: Ctx) -> Response:
    return _page(ctx, {})


def change(ctx: Ctx) -> Response:
    caller, target = acting_caller(ctx)
    outcome = change_access(ctx, caller, target)
    if outcome.error is not None:
        return _page(ctx, outcome.errors, status=outcome.error.status)
    return ctx.redirect(ACCESS_PATH, flash=outcome.message)
