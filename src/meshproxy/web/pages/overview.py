"""The home page: the account's usage against its limits, its billing periods as charts,
and for a parent its plan and top sub-accounts."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from meshproxy.domain.billing import billing_period
from meshproxy.domain.limits import Usage
from meshproxy.web.context import Ctx
from meshproxy.web.pages.proxies import proxy_urls, steering
from meshproxy.web.state import account_state, usage_now
from meshproxy.web.stats import stats_view
from meshproxy.web.usage import billing_day_of, period_charts, period_text, top_sub_accounts_chart


def overview(ctx: Ctx) -> Response:
    user, store = ctx.user, ctx.store
    monthly, total = store.usage.of(user, ctx.now)
    billing_day = billing_day_of(store, user)
    period = billing_period(billing_day, ctx.now)
    parent = None if user.is_parent else store.accounts.get(user.parent_username or "")
    parent_usage = None if parent is None else usage_now(store, parent, ctx.now)
    context: dict[str, Any] = {
        "state": account_state(user, Usage(monthly, total), parent, parent_usage),
        "monthly": monthly,
        "total": total,
        "billing_day": billing_day,
        "period": period_text(period),
        "charts": period_charts(store, user, ctx.now),
        "stats": stats_view(store, user, ctx.now),
    }
    if user.is_parent:
        context.update(
            plan=ctx.settings.plan(user.plan or ""),
            sub_account_count=store.accounts.count_sub_accounts(user.id),
            proxy_count=len(store.access.authorized_proxies(user)),
            top_chart=top_sub_accounts_chart(store, user, ctx.now),
        )
        return ctx.render("overview_parent.html", **context)
    return ctx.render(
        "overview_sub.html", proxies=proxy_urls(ctx), steering=steering(ctx), **context
    )
