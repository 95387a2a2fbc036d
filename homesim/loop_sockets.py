"""paho clients driven from one asyncio event loop, with no network thread per client.

paho's own network thread (``loop_start``) would cost one OS thread per device, and the
simulator runs hundreds of devices on one event loop. Instead each client's socket is
watched with ``add_reader``/``add_writer``; the device calls ``loop_misc`` once a second for
the keepalive. Every paho callback therefore runs on the event loop thread and needs no
locking. Only the blocking TCP connect runs in a worker thread, so a slow or unreachable
broker never stalls the loop; the socket hooks paho calls from there are handed to the loop
with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho


class LoopSockets:
    """Watches the sockets of paho clients on the event loop that created it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve clients on ``loop``; must be made on that loop's thread."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def attach(self, client: paho.Client) -> None:
        """Let the loop, not a paho thread, read and write this client's socket."""
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write

    def drop(self, client: paho.Client) -> None:
        """Close the connection without DISCONNECT, as a crash or a dead battery would."""
        sock = client.socket()
        if sock is None:
            return
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        # paho reads the end of the stream, closes the socket itself and reports the loss.
        for _ in range(1000):
            if client.socket() is None:
                return
            client.loop_read()
        # Never expected on a shut-down socket; close it anyway rather than leak it.
        self._on_socket_close(client, None, sock)
        sock.close()

    def detach(self, client: paho.Client) -> None:
        """Drop the connection and unhook the client, so it can call nothing any more."""
        self.drop(client)
        client.on_socket_open = client.on_socket_close = None
        client.on_socket_register_write = client.on_socket_unregister_write = None

    def _in_loop(self, function: Callable[[], None]) -> None:
        """Run on the event loop thread: paho calls socket hooks from the connect thread too."""
        if threading.get_ident() == self._loop_thread:
            function()
        else:
            self._loop.call_soon_threadsafe(function)

    def _on_socket_open(self, client: paho.Client, _userdata: Any, sock: paho.SocketLike) -> None:
        """Watch the new socket for data from the broker."""

        def watch() -> None:
            """Only if the socket is still this client's: it may have closed meanwhile."""
            if client.socket() is sock:
                self._loop.add_reader(sock, client.loop_read)

        self._in_loop(watch)

    def _on_socket_close(self, _client: Any, _userdata: Any, sock: paho.SocketLike) -> None:
        """Stop watching a socket; paho closes it right after, always on the loop thread."""
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)

    def _on_socket_register_write(
        self, client: paho.Client, _userdata: Any, sock: paho.SocketLike
    ) -> None:
        """paho has bytes to send: write when the socket can take them."""

        def watch() -> None:
            """Only if the socket is still this client's: it may have closed meanwhile."""
            if client.socket() is sock:
                self._loop.add_writer(sock, client.loop_write)

        self._in_loop(watch)

    def _on_socket_unregister_write(
        self, client: paho.Client, _userdata: Any, sock: paho.SocketLike
    ) -> None:
        """Everything is sent: stop asking for writability."""

        def unwatch() -> None:
            """A closed socket was already unwatched by the close hook."""
            if client.socket() is sock:
                self._loop.remove_writer(sock)

        self._in_loop(unwatch)
