"""A minimal real HTTP/1.1 server for tests standing in for a third party (an SMS gateway,
a browser's push service): records each request and answers with a set status."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Received:
    """One HTTP request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """Records each request and answers with ``status`` (a small JSON body when ``json``)."""

    status: int = 200
    json: bool = False
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    # While set to an unset event, requests are read and then left hanging until it is set.
    hold: asyncio.Event | None = None
    in_flight: int = 0
    most_in_flight: int = 0
    # Set whenever a request has been read.
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read one request, record it, answer and hang up."""
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _version = head[0].split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, value in (line.split(":", 1) for line in head[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Received(method, path, headers, body))
            self.arrived.set()
            if self.hold is not None:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                try:
                    await self.hold.wait()
                finally:
                    self.in_flight -= 1
            reply = b""
            kind = ""
            if self.json:
                reply = b"{}" if self.status < 400 else b'{"error": "as configured"}'
                kind = "Content-Type: application/json\r\n"
            writer.write(
                f"HTTP/1.1 {self.status} Status\r\n{kind}Content-Length: {len(reply)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + reply
            )
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()


@asynccontextmanager
async def serving(receiver: HttpReceiver) -> AsyncIterator[HttpReceiver]:
    """Run ``receiver`` on a free port of 127.0.0.1 for the block."""
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    async with server:
        yield receiver
