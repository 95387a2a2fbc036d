"""The ``vaki`` command: serve, demo data, database migrations, staff and devices."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import socket
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices
from server.db import (
    alembic_config,
    check_database,
    create_engine,
    current_revision,
    describe_url,
    head_revision,
    session_factory,
    upgrade_database,
)
from server.demo import DemoWorld, load_demo_world
from server.errors import PortInUseError, StartupError
from server.logging import configure_logging
from server.settings import Settings

T = TypeVar("T")

cli = typer.Typer(
    name="vaki",
    help="Vaki: telehealth and welfare technology for people aged 60+ living at home.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="Database schema: migrate and check.", no_args_is_help=True)
user_cli = typer.Typer(help="Staff logins.", no_args_is_help=True)
device_cli = typer.Typer(help="Devices in residents' homes.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(user_cli, name="user")
cli.add_typer(device_cli, name="device")
token_cli = typer.Typer(
    help="API tokens for integrations and the live stream.", no_args_is_help=True
)
cli.add_typer(token_cli, name="token")
push_cli = typer.Typer(help="Web push notifications.", no_args_is_help=True)
cli.add_typer(push_cli, name="push")
policy_cli = typer.Typer(help="Escalation policies.", no_args_is_help=True)
cli.add_typer(policy_cli, name="policy")
bench_cli = typer.Typer(help="Benchmarks that print their figures.", no_args_is_help=True)
cli.add_typer(bench_cli, name="bench")
mqtt_cli = typer.Typer(help="An external MQTT broker (Mosquitto).", no_args_is_help=True)
cli.add_typer(mqtt_cli, name="mqtt")


def _fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the exit to raise."""
    typer.echo(f"vaki: {message}", err=True)
    return typer.Exit(code)


def _settings() -> Settings:
    """Load settings once, from the environment and ``.env``."""
    try:
        return Settings()
    except ValueError as err:
        raise _fail(f"invalid configuration: {err}") from err


def _run_with_database(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Check the database, migrate it, and run ``work`` in one committed session."""

    async def run() -> T:
        await check_database(settings.effective_database_url)
        engine = create_engine(settings.effective_database_url)
        try:
            await upgrade_database(engine)
            async with session_factory(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except StartupError as err:
        raise _fail(str(err)) from err
    except care.CareError as err:
        raise _fail(str(err)) from err
    except devices.DevicesError as err:
        raise _fail(str(err)) from err


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


def _print_world(world: DemoWorld, as_json: bool) -> None:
    """Show the demo logins (and device secrets in JSON)."""
    if as_json:
        typer.echo(json.dumps(world.to_dict(), ensure_ascii=False))
        return
    typer.echo(f"Demo world: {len(world.residents)} residents. Staff logins:")
    for login in world.staff:
        typer.echo(
            f"  {login.username:<8} {login.password:<14} {login.role:<17} {login.organisation}"
        )


@cli.command()
def serve(
    demo: Annotated[bool, typer.Option("--demo", help="Load the demo world first.")] = False,
    host: Annotated[str | None, typer.Option(help="Override VAKI_HTTP_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Override VAKI_HTTP_PORT.")] = None,
) -> None:
    """Run the service: web pages, API, MQTT ingestion and the scheduler."""
    settings = _settings()
    if host is not None:
        settings.http_host = host
    if port is not None:
        settings.http_port = port
    if demo and settings.demo_homes == 0:
        settings.demo_homes = 3
    configure_logging(settings)
    try:
        sock = bind_http_socket(settings.http_host, settings.http_port)
    except StartupError as err:
        raise _fail(str(err)) from err
    if demo:
        world = _run_with_database(settings, load_demo_world)
        _print_world(world, as_json=False)
    else:
        try:
            asyncio.run(check_database(settings.effective_database_url))
        except StartupError as err:
            raise _fail(str(err)) from err
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
    server.run(sockets=[sock])
    if not server.started:
        raise _fail("the service did not start; see the log above", code=3)


@cli.command()
def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Print the logins as JSON.")] = False,
) -> None:
    """Load the demo world (or give its staff new passwords when it exists) and print logins."""
    settings = _settings()
    world = _run_with_database(settings, load_demo_world)
    _print_world(world, as_json)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest migration."""
    settings = _settings()

    async def run() -> str | None:
        await check_database(settings.effective_database_url)
        engine = create_engine(settings.effective_database_url)
        try:
            await upgrade_database(engine)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    try:
        revision = asyncio.run(run())
    except StartupError as err:
        raise _fail(str(err)) from err
    typer.echo(f"database at revision {revision} (head {head_revision()})")


@db_cli.command("check")
def db_check() -> None:
    """Fail when the models and the migrations differ (run after ``db upgrade``)."""
    settings = _settings()

    from alembic import command

    async def run() -> None:
        engine = create_engine(settings.effective_database_url)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(lambda sync: command.check(alembic_config(sync)))
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except Exception as err:
        raise _fail(f"models and migrations differ: {err}", code=1) from err
    typer.echo("models and migrations agree")


@user_cli.command("add")
def user_add(
    username: Annotated[str, typer.Option(help="Login name.")],
    full_name: Annotated[str, typer.Option(help="Name shown to colleagues.")],
    role: Annotated[care.StaffRole, typer.Option(help="What the person does.")],
    organisation: Annotated[str, typer.Option(help="Employer; created if new.")],
    organisation_kind: Annotated[
        care.OrganisationKind, typer.Option(help="Kind of a new organisation.")
    ] = care.OrganisationKind.MUNICIPALITY,
    language: Annotated[str, typer.Option(help="is, en, sv, fi or pl.")] = "is",
    password: Annotated[
        str | None, typer.Option(help="Password; a random one is made and shown when omitted.")
    ] = None,
) -> None:
    """Create a staff login."""
    settings = _settings()
    secret = password or care.new_secret(12)

    async def work(session: AsyncSession) -> care.StaffUser:
        org = await care.ensure_organisation(session, organisation, organisation_kind)
        return await care.add_staff_user(
            session,
            username=username,
            full_name=full_name,
            password=secret,
            role=role,
            organisation=org,
            language=language,
        )

    user = _run_with_database(settings, work)
    typer.echo(f"created {user.username} ({user.role}, {organisation})")
    if password is None:
        typer.echo(f"password: {secret}")


@user_cli.command("totp")
def user_totp(
    username: Annotated[str, typer.Argument(help="The staff login to protect.")],
) -> None:
    """Require a one-time code from an authenticator app at sign-in; prints its URI once."""
    settings = _settings()

    async def work(session: AsyncSession) -> str:
        return await care.enrol_totp(session, username)

    uri = _run_with_database(settings, work)
    typer.echo(uri)
    typer.echo(
        "Add this to the authenticator app now (as a QR code or by pasting it): it is not "
        "shown again. Running this command again replaces it.",
        err=True,
    )


def _broker_address(settings: Settings) -> tuple[str, int]:
    """The host and port devices must use to reach the broker."""
    if settings.mqtt_url:
        endpoint = devices.MqttEndpoint.from_url(settings.mqtt_url)
        return endpoint.host, endpoint.port
    running = devices.read_broker_address(settings.data_dir)
    if running is not None:
        return running.host, running.port
    return settings.mqtt_embedded_host, settings.mqtt_embedded_port


@device_cli.command("add")
def device_add(
    resident: Annotated[int, typer.Option(help="Resident id the device belongs to.")],
    kind: Annotated[devices.DeviceKind, typer.Option(help="What the device is.")],
    label: Annotated[str, typer.Option(help="Free text, e.g. 'bedroom'.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the credentials as JSON.")] = False,
) -> None:
    """Register a device and print its MQTT credentials (shown once, stored hashed)."""
    settings = _settings()

    async def work(session: AsyncSession) -> devices.ProvisionedDevice:
        return await devices.provision_device(session, kind=kind, resident_id=resident, label=label)

    provisioned = _run_with_database(settings, work)
    host, port = _broker_address(settings)
    credentials = {
        "device_id": provisioned.device.id,
        "username": provisioned.device.id,
        "password": provisioned.secret,
        "mqtt_host": host,
        "mqtt_port": port,
    }
    if kind == devices.DeviceKind.TABLET:
        # The tablet's page keeps this key; it is the same credential as on MQTT.
        base = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
        key = devices.tablet_key(provisioned.device.id, provisioned.secret)
        credentials["tablet_url"] = f"{base.rstrip('/')}/tablet/#key={key}"
    if as_json:
        typer.echo(json.dumps(credentials))
        return
    for key, value in credentials.items():
        typer.echo(f"{key:<10} {value}")
    typer.echo("The password is shown only now; keep it in the device's configuration.")


@device_cli.command("revoke")
def device_revoke(
    device_id: Annotated[str, typer.Argument(help="The device to shut out.")],
) -> None:
    """End a device's access: its secret no longer opens the broker."""
    settings = _settings()

    async def work(session: AsyncSession) -> devices.Device:
        return await devices.revoke_device(session, device_id)

    device = _run_with_database(settings, work)
    typer.echo(f"revoked {device.id}")


@mqtt_cli.command("export-auth")
def mqtt_export_auth(
    password_file: Annotated[Path, typer.Option(help="Mosquitto password_file to write.")],
    acl_file: Annotated[Path, typer.Option(help="Mosquitto acl_file to write.")],
    server_username: Annotated[
        str | None, typer.Option(help="The service's broker login (default: from VAKI_MQTT_URL).")
    ] = None,
    server_password: Annotated[
        str | None, typer.Option(help="Its password (default: from VAKI_MQTT_URL).")
    ] = None,
) -> None:
    """Write Mosquitto's password and ACL files: every active device, and the service."""
    settings = _settings()
    endpoint = devices.MqttEndpoint.from_url(settings.mqtt_url) if settings.mqtt_url else None
    username = server_username or (endpoint.username if endpoint else None)
    password = server_password or (endpoint.password if endpoint else None)
    if not username or not password:
        raise _fail(
            "the service's broker login is unknown: put it in VAKI_MQTT_URL "
            "(mqtt://user:password@host:1883) or pass --server-username and --server-password"
        )
    logins = _run_with_database(settings, devices.active_broker_logins)
    for path, content in (
        (password_file, devices.render_password_file(logins, username, password)),
        (acl_file, devices.render_acl_file(username)),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(content)
        temporary.chmod(0o640)  # the broker's group must read it
        temporary.replace(path)  # atomic: Mosquitto never reads half a file
    typer.echo(f"wrote {len(logins)} device logins to {password_file} and the ACL to {acl_file}")
    typer.echo("In mosquitto.conf:")
    typer.echo(
        devices.MOSQUITTO_CONF.format(
            password_file=password_file.resolve(), acl_file=acl_file.resolve()
        )
    )
    typer.echo(
        "Reload Mosquitto to apply (kill -HUP its pid); do so after every device add/revoke."
    )


@cli.command()
def simulate(
    homes: Annotated[int, typer.Option(help="Virtual homes to create and run.")] = 5,
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 60.0,
    seconds: Annotated[
        float | None, typer.Option(help="Stop after this many real seconds (default: never).")
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option(help="fall_at_night, device_goes_silent, hypertensive_crisis or panic."),
    ] = None,
) -> None:
    """Run virtual homes (tablet, cuff, scale, oximeter, motion, door, bed, pendant) that
    follow the MQTT contract like good firmware, against the configured or running broker."""
    settings = _settings()
    configure_logging(settings)
    scenarios = frozenset(scenario or ())
    unknown = scenarios - devices.SCENARIOS
    if unknown:
        raise _fail(f"unknown scenario {sorted(unknown)[0]!r}; known: {sorted(devices.SCENARIOS)}")
    host, port = _broker_address(settings)
    if not settings.mqtt_url and devices.read_broker_address(settings.data_dir) is None:
        raise _fail(
            "no broker to connect to: start `vaki serve` (embedded broker) or set VAKI_MQTT_URL"
        )
    kinds = (
        devices.DeviceKind.TABLET,
        devices.DeviceKind.BLOOD_PRESSURE_MONITOR,
        devices.DeviceKind.SCALE,
        devices.DeviceKind.PULSE_OXIMETER,
        devices.DeviceKind.MOTION_SENSOR,
        devices.DeviceKind.DOOR_SENSOR,
        devices.DeviceKind.BED_SENSOR,
        devices.DeviceKind.PANIC_BUTTON,
    )

    async def work(session: AsyncSession) -> list[devices.SimulatedHome]:
        made = []
        for number in range(homes):
            resident = care.Resident(full_name=f"Simulated home {number + 1}")
            session.add(resident)
            await session.flush()
            fleet = []
            for kind in kinds:
                provisioned = await devices.provision_device(
                    session, kind=kind, resident_id=resident.id, label=kind.value
                )
                fleet.append(
                    devices.SimulatedDevice(provisioned.device.id, kind, provisioned.secret)
                )
            made.append(
                devices.SimulatedHome(
                    resident.full_name, resident.time_zone, tuple(fleet), scenarios
                )
            )
        return made

    virtual_homes = _run_with_database(settings, work)
    typer.echo(f"{homes} homes on {host}:{port}, {speed:g}x speed; Ctrl-C stops them", err=True)
    simulator = devices.Simulator(virtual_homes, host, port, speed=speed)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(simulator.run(seconds))
    stats = simulator.stats
    typer.echo(json.dumps({"published": dict(stats.published), "acked": dict(stats.acked)}))


@token_cli.command("create")
def token_create(
    username: Annotated[str, typer.Option(help="The staff member the token acts for.")],
    label: Annotated[str, typer.Option(help="What it is for, e.g. 'wall display'.")] = "",
) -> None:
    """Create an API token (shown once; stored hashed)."""
    settings = _settings()

    async def work(session: AsyncSession) -> str:
        lifetime = timedelta(days=settings.api_token_lifetime_days)
        return await care.create_api_token(session, username, label, lifetime=lifetime)

    typer.echo(_run_with_database(settings, work))


@push_cli.command("keys")
def push_keys() -> None:
    """Make a VAPID key pair for web push: put the private key in VAKI_VAPID_PRIVATE_KEY."""
    import alerts

    private_key, public_key = alerts.generate_vapid_keys()
    typer.echo(f"VAKI_VAPID_PRIVATE_KEY={private_key}")
    typer.echo(f"public key (for browsers): {public_key}")


@policy_cli.command("check")
def policy_check() -> None:
    """Name every gap in every team's escalation policy (nobody on call, no channel, ...)."""
    from sqlmodel import select

    import alerts

    settings = _settings()

    async def work(session: AsyncSession) -> list[str]:
        found: list[str] = []
        for policy in (await session.exec(select(alerts.EscalationPolicy))).all():
            tiers = list(
                (
                    await session.exec(
                        select(alerts.EscalationTier).where(
                            alerts.EscalationTier.policy_id == policy.id
                        )
                    )
                ).all()
            )
            team = await session.get(care.CareTeam, policy.team_id)
            name = team.name if team else policy.team_id
            found.extend(
                f"{name}, {policy.name}: {gap}"
                for gap in await alerts.policy_gaps(session, policy.team_id, tiers)
            )
        return found

    gaps = _run_with_database(settings, work)
    for gap in gaps:
        typer.echo(gap)
    if gaps:
        raise typer.Exit(1)
    typer.echo("every tier of every policy reaches somebody")


def _run_bench(
    database_url: str | None,
    broker: str,
    run: Callable[[Settings], Coroutine[Any, Any, dict[str, Any]]],
) -> dict[str, Any]:
    """Run a benchmark in a throwaway data directory against the chosen broker."""
    import shutil

    from server.bench_ingest import bench_settings, tuned_mosquitto

    if broker not in ("configured", "embedded", "mosquitto"):
        raise _fail(f"--broker must be configured, embedded or mosquitto, not {broker!r}")
    run_settings, scratch = bench_settings(_settings(), database_url)
    try:
        with contextlib.ExitStack() as stack:
            if broker == "embedded":
                run_settings.mqtt_url = None
            elif broker == "mosquitto":
                run_settings.mqtt_url = stack.enter_context(tuned_mosquitto(scratch))
            return asyncio.run(run(run_settings))
    except StartupError as err:
        raise _fail(str(err)) from err
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _print_figures(figures: dict[str, Any], as_json: bool) -> None:
    """The figures, one per line for people, and always as JSON on the last line."""
    if not as_json:
        for key, value in figures.items():
            typer.echo(f"{key:<28} {value}")
    typer.echo(json.dumps(figures))


@bench_cli.command("ingest")
def bench_ingest(
    seconds: Annotated[float, typer.Option(help="Publishing time of each phase.")] = 20.0,
    device_count: Annotated[int, typer.Option("--devices", help="Virtual devices.")] = 40,
    publishers: Annotated[int, typer.Option(help="Publisher processes.")] = 2,
    window: Annotated[int, typer.Option(help="Unacked readings each device keeps.")] = 50,
    batch: Annotated[int, typer.Option(help="Readings per message (a hub batches).")] = 1,
    broker: Annotated[
        str,
        typer.Option(
            help="configured (VAKI_MQTT_URL, else embedded), embedded, or mosquitto "
            "(a private Mosquitto with the recommended limits)."
        ),
    ] = "configured",
    database_url: Annotated[
        str | None, typer.Option(help="Database to write to (default: a new SQLite file).")
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Short run (under a minute).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Last line: one JSON object.")] = False,
) -> None:
    """Readings committed per second end to end, and the broker's bare-subscriber rate.

    Uses the configured broker (VAKI_MQTT_URL) or, when none is set, the embedded one.
    """
    from server.bench_ingest import BenchConfig, run_ingest_bench

    config = BenchConfig(
        seconds=5.0 if quick else seconds,
        devices=device_count,
        publishers=publishers,
        window=window,
        batch=batch,
    )
    _print_figures(
        _run_bench(database_url, broker, lambda run: run_ingest_bench(run, config)), as_json
    )


@bench_cli.command("alerts")
def bench_alerts(
    seconds: Annotated[float, typer.Option(help="Time over which panics are pressed.")] = 30.0,
    background: Annotated[int, typer.Option(help="Background readings per second.")] = 2000,
    panics: Annotated[int, typer.Option(help="Panic presses (one resident each).")] = 40,
    broker: Annotated[
        str, typer.Option(help="configured, embedded, or mosquitto (private, tuned).")
    ] = "configured",
    quick: Annotated[bool, typer.Option("--quick", help="Short run (under a minute).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Last line: one JSON object.")] = False,
) -> None:
    """Panic → console stream latency under background load, and escalation lateness."""
    from server.bench_alerts import AlertBenchConfig, run_alert_bench

    config = AlertBenchConfig(
        seconds=10.0 if quick else seconds,
        background_per_s=background,
        panics=10 if quick else panics,
        tier_timeout_s=2,
    )
    figures = _run_bench(None, broker, lambda run: run_alert_bench(run, config))
    _print_figures(figures, as_json)


@bench_cli.command("checkins")
def bench_checkins(
    residents: Annotated[int, typer.Option(help="Residents, each with a tablet and a plan.")] = (
        10_000
    ),
    broker: Annotated[
        str, typer.Option(help="mosquitto (private, tuned), configured, or embedded.")
    ] = "mosquitto",
    database_url: Annotated[
        str | None, typer.Option(help="Database to write to (default: a new SQLite file).")
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Under a minute: 1,000 residents at most.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Last line: one JSON object.")] = False,
) -> None:
    """A slot of check-ins due for every resident at once: due → on the tablet, duplicates,
    how late missed check-ins are raised, and the scheduler's memory."""
    from server.bench_checkins import CheckinBenchConfig, run_checkin_bench

    config = CheckinBenchConfig(residents=min(residents, 1000) if quick else residents, quick=quick)
    figures = _run_bench(database_url, broker, lambda run: run_checkin_bench(run, config))
    if config.residents < residents:
        figures = {"note": f"quick run: {config.residents} residents, not {residents}", **figures}
    _print_figures(figures, as_json)


@bench_cli.command("video")
def bench_video(
    max_calls: Annotated[int, typer.Option(help="Stop adding calls at this many.")] = 40,
    clients: Annotated[int, typer.Option(help="Processes running the participants.")] = 2,
    quick: Annotated[bool, typer.Option("--quick", help="Short run (under a minute).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Last line: one JSON object.")] = False,
) -> None:
    """Relayed 1:1 calls (640×480 30 fps + sound) added until frames arrive late: max calls,
    server CPU per stream, call setup time, against aiortc's stock transcoding path."""
    from server.bench_video import VideoBenchConfig, run

    config = VideoBenchConfig(
        quick=quick,
        max_calls=min(max_calls, 24) if quick else max_calls,
        step=4 if quick else 2,
        window_s=4.0 if quick else 8.0,
        client_processes=clients,
    )
    _print_figures(run(_settings(), config), as_json)


def main() -> None:
    """Entry point of the ``vaki`` console script."""
    cli()


if __name__ == "__main__":
    main()
