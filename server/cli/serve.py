"""``vaki serve``: the whole service on one port, optionally with the demo world."""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Annotated

import typer

from server.cli.common import fail, load_settings
from server.cli.demo import load_world, print_world
from server.db import check_database, describe_url
from server.errors import PortInUseError, StartupError
from server.logging import configure_logging


def bind_http_socket(host: str, port: int) -> socket.socket:
    """Bind the HTTP port now, so a busy port is one clear error and never a race."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host} is already in use by another program",
                setting="VAKI_HTTP_PORT",
            ) from err
        raise PortInUseError(
            f"cannot listen on {host}:{port}: {err.strerror}", setting="VAKI_HTTP_HOST"
        ) from err
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    demo: Annotated[bool, typer.Option("--demo", help="Load the demo world first.")] = False,
    host: Annotated[str | None, typer.Option(help="Override VAKI_HTTP_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Override VAKI_HTTP_PORT.")] = None,
    ingest_workers: Annotated[
        int | None,
        typer.Option(help="Override VAKI_INGEST_WORKERS: processes ingesting readings."),
    ] = None,
) -> None:
    """Run the service: web pages, API, MQTT ingestion and the scheduler."""
    settings = load_settings()
    if host is not None:
        settings.http_host = host
    if port is not None:
        settings.http_port = port
    if ingest_workers is not None:
        settings.ingest_workers = ingest_workers
    if demo and settings.demo_homes == 0:
        settings.demo_homes = 25
    configure_logging(settings)
    try:
        sock = bind_http_socket(settings.http_host, settings.http_port)
    except StartupError as err:
        raise fail(str(err)) from err
    mail = None
    if demo:
        shown = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::") else settings.http_host  # noqa: S104
        base_url = f"http://{shown}:{sock.getsockname()[1]}"
        print_world(load_world(settings), as_json=False, base_url=base_url)
        if not settings.smtp_host:
            from server.demo_mail import start_demo_mail  # only the demo needs the mail sink

            mail = start_demo_mail(settings)  # so the demo's policies can e-mail
            typer.echo(f"Demo e-mail is kept in {settings.data_dir / 'demo-mail'}", err=True)
    else:
        try:
            asyncio.run(check_database(settings.effective_database_url))
        except StartupError as err:
            raise fail(str(err)) from err
    typer.echo(
        f"Vaki on http://{settings.http_host}:{sock.getsockname()[1]} "
        f"(database {describe_url(settings.effective_database_url)})",
        err=True,
    )
    # The web stack loads only when serving, so the other commands start quickly.
    import uvicorn

    from server.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        log_config=None,
        lifespan="on",
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        if mail is not None:
            mail.stop()
    if not server.started:
        raise fail("the service did not start; see the log above", code=3)
