"""serve_api: both listeners on the caller's loop, ports reported, stopped by cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

import httpx
import pytest

from meshproxy.api import create_app
from meshproxy.api.server import ApiPorts, serve_api
from meshproxy.store import Store

from .harness import settings_for


async def test_serve_api_on_the_callers_loop(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data")
    store = Store.open(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    app = create_app(settings, store)
    started: asyncio.Future[ApiPorts] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_api(settings, app, ready=started.set_result))
    ports = await asyncio.wait_for(started, 10)
    assert ports.https > 0 and ports.http is not None and ports.http > 0
    context = ssl.create_default_context(cafile=str(settings.data_dir / "tls" / "api-cert.pem"))
    async with httpx.AsyncClient(verify=context) as client:
        response = await client.get(f"https://127.0.0.1:{ports.https}/api/ips/")
        assert response.status_code == 401
        response = await client.get(f"http://127.0.0.1:{ports.http}/api/ips/")
        assert response.status_code == 302
        assert response.headers["location"] == f"https://127.0.0.1:{ports.https}/api/ips/"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(verify=context) as client:
            await client.get(f"https://127.0.0.1:{ports.https}/api/ips/")
    store.close()


async def test_without_tls_one_plain_listener(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data", api={"tls": False, "require_https": False})
    store = Store.open(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    started: asyncio.Future[ApiPorts] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve_api(settings, create_app(settings, store), ready=started.set_result)
    )
    ports = await asyncio.wait_for(started, 10)
    assert ports.http is None
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{ports.https}/api/ips/")
        assert response.status_code == 401
    assert not (settings.data_dir / "tls").exists()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    store.close()
