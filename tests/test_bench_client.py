"""The load benchmark's HTTP/1.1 client (bench/load.py) against a real server on 127.0.0.1: bodies by
Content-Length, chunked and until close; cookies; keep-alive; a reused connection the server closed."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.load import Connection, Operator, TransportError

RESPONSES = {
    b"/length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: csrftoken=abc; Path=/\r\n\r\nhello",
    b"/chunked": b"HTTP/1.1 286 Unknown\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n",
    b"/close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
}


async def serve(requests: list[bytes], hang_up_after: int = 100) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        while served < hang_up_after:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            requests.append(head)
            path = head.split(b" ")[1]
            writer.write(RESPONSES[path])
            await writer.drain()
            served += 1
            if path == b"/close":
                break
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def run(scenario) -> None:
    """asyncio.run in a thread of its own: the browser tests' Playwright keeps a loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()


def test_it_reads_each_kind_of_body_and_keeps_cookies():
    async def scenario() -> None:
        requests: list[bytes] = []
        server = await serve(requests)
        port = server.sockets[0].getsockname()[1]
        connection = Connection(f"http://127.0.0.1:{port}")
        connection.cookies["sessionid"] = "s1"
        first = await connection.get("/length", {"HX-Request": "true"})
        assert (first.status_code, first.text, connection.cookies["csrftoken"]) == (200, "hello", "abc")
        chunked = await connection.get("/chunked", {})
        assert (chunked.status_code, chunked.text, connection.is_open) == (286, "abcdefg", True)
        closing = await connection.get("/close", {})
        assert (closing.text, connection.is_open) == ("until the end", False)
        assert b"Cookie: sessionid=s1\r\n" in requests[0] and b"HX-Request: true\r\n" in requests[0]
        assert b"Cookie: sessionid=s1; csrftoken=abc\r\n" in requests[1]
        server.close()

    run(scenario)


def test_it_sends_again_once_on_a_reused_connection_the_server_closed():
    async def scenario() -> None:
        server = await serve([], hang_up_after=1)
        port = server.sockets[0].getsockname()[1]
        operator = Operator(f"http://127.0.0.1:{port}")
        assert (await operator.get("/length")).text == "hello"
        await asyncio.sleep(0.05)  # the server hangs up the idle keep-alive connection
        assert (await operator.get("/length")).text == "hello"
        assert operator.resent == 1
        server.close()
        await server.wait_closed()
        with pytest.raises(TransportError):  # a fresh connection that fails is an error, not resent
            await Operator(f"http://127.0.0.1:{port}").get("/length")

    run(scenario)
