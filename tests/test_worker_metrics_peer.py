"""A peer worker's /metrics?local is read to its end, however it arrives in pieces."""

from __future__ import annotations

import asyncio

from meshproxy.ops.workers import local_metrics


async def test_a_page_sent_in_pieces_is_read_whole() -> None:
    body = b"".join(b"meshproxy_x_total{n=\"%d\"} 1.0\n" % i for i in range(5000))

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body[:1000])
        await writer.drain()
        await asyncio.sleep(0.05)  # the rest comes later: the first read sees only a part
        writer.write(body[1000:])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await local_metrics("127.0.0.1", port) == body.decode()
    finally:
        server.close()
        await server.wait_closed()
