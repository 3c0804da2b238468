"""The dashboard's routes, mounted by the API node at "/" beside its "/api/..." routes.

Every page lives under /dashboard/; "/" sends the browser there. Paths end with a slash
(the API app does not redirect slashes, so the few entry points without one redirect here).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from meshproxy.config import Settings
from meshproxy.control.credentials import CredentialChecker
from meshproxy.store import Store
from meshproxy.web.client_info import ClientInfo, PeerOnly
from meshproxy.web.context import HOME_PATH, PREFIX, Access, Clock, Dashboard, Page, endpoint
from meshproxy.web.pages import (
    access,
    alerts,
    audit,
    auth,
    export,
    help,
    overview,
    proxies,
    subaccounts,
)
from meshproxy.web.pages.missing import not_found, not_found_without_session
from meshproxy.web.secret import load_or_create_secret
from meshproxy.web.sessions import SessionCodec
from meshproxy.web.templates import make_environment

SUB = f"{PREFIX}/sub-accounts/{{username}}"
OTHER_METHODS = ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"]  # GET (and HEAD) have a session
_TABLE: Sequence[tuple[str, Page, Access, tuple[str, ...]]] = (
    (f"{PREFIX}/login/", auth.login, Access.ANYONE, ("GET", "POST")),
    (f"{PREFIX}/logout/", auth.logout, Access.ANYONE, ("POST",)),
    (f"{PREFIX}/password/", auth.password, Access.ACCOUNT, ("GET", "POST")),
    (f"{PREFIX}/", overview.overview, Access.ACCOUNT, ("GET",)),
    (f"{PREFIX}/access/", access.access, Access.ACCOUNT, ("GET",)),
    (f"{PREFIX}/access/{{kind}}/{{action}}/", access.change, Access.ACCOUNT, ("POST",)),
    (f"{PREFIX}/proxies/", proxies.proxies, Access.ACCOUNT, ("GET",)),
    (f"{PREFIX}/proxies/add/", proxies.add, Access.PARENT, ("POST",)),
    (f"{PREFIX}/proxies/delete/", proxies.remove, Access.PARENT, ("POST",)),
    (f"{PREFIX}/help/", help.api_help, Access.PARENT, ("GET",)),
    (f"{PREFIX}/export/", export.export, Access.PARENT, ("GET",)),
    (f"{PREFIX}/export/usage.csv", export.usage_csv, Access.PARENT, ("GET",)),
    (f"{PREFIX}/export/requests.csv", export.stats_csv, Access.PARENT, ("GET",)),
    (f"{PREFIX}/audit/", audit.audit, Access.PARENT, ("GET",)),
    (f"{PREFIX}/alerts/", alerts.alerts, Access.PARENT, ("GET",)),
    (f"{PREFIX}/alerts/add/", alerts.add, Access.PARENT, ("POST",)),
    (f"{PREFIX}/alerts/delete/", alerts.remove, Access.PARENT, ("POST",)),
    (f"{PREFIX}/sub-accounts/", subaccounts.sub_accounts, Access.PARENT, ("GET",)),
    (f"{PREFIX}/new-sub-account/", subaccounts.new_sub_account, Access.PARENT, ("GET", "POST")),
    (f"{SUB}/", subaccounts.sub_account, Access.PARENT, ("GET",)),
    (f"{SUB}/edit/", subaccounts.edit, Access.PARENT, ("POST",)),
    (f"{SUB}/activate/", subaccounts.set_active(True), Access.PARENT, ("POST",)),
    (f"{SUB}/deactivate/", subaccounts.set_active(False), Access.PARENT, ("POST",)),
    (f"{SUB}/delete/", subaccounts.delete, Access.PARENT, ("GET", "POST")),
    (f"{SUB}/{{kind}}/{{action}}/", subaccounts.change_sub_access, Access.PARENT, ("POST",)),
)


async def _to_home(request: Request) -> Response:
    return RedirectResponse(HOME_PATH, status_code=302)


def dashboard_routes(
    settings: Settings,
    store: Store,
    *,
    clock: Clock = time.time,
    clients: ClientInfo | None = None,
) -> list[BaseRoute]:
    """The dashboard as Starlette routes. `clock` gives epoch seconds (tests move time);
    `clients` tells the client address and scheme (the API's trusted-proxy rules)."""
    dash = Dashboard(
        settings=settings,
        store=store,
        clock=clock,
        codec=SessionCodec(load_or_create_secret(settings.data_dir)),
        checker=CredentialChecker(store, settings.ban.policy()),
        templates=make_environment(),
        clients=clients or PeerOnly(),
    )
    routes: list[BaseRoute] = [
        Route(path, endpoint(dash, page, access), methods=list(methods))
        for path, page, access, methods in _TABLE
    ]
    routes += [
        Route("/", _to_home, methods=["GET"]),
        Route(PREFIX, _to_home, methods=["GET"]),
        Mount(
            f"{PREFIX}/static",
            app=StaticFiles(packages=[("meshproxy.web", "static")]),
            name="dashboard-static",
        ),
        # Last: any other address under /dashboard/ is an HTML 404, never the API's JSON.
        Route(f"{PREFIX}/{{rest:path}}", endpoint(dash, not_found, Access.ANYONE), methods=["GET"]),
        Route(f"{PREFIX}/{{rest:path}}", not_found_without_session(dash), methods=OTHER_METHODS),
    ]
    return routes
