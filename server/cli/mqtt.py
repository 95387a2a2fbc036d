"""``vaki mqtt``: Mosquitto's password and ACL files for an external broker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import devices
from server.cli.common import fail, load_settings, run_with_database

app = typer.Typer(help="An external MQTT broker (Mosquitto).", no_args_is_help=True)


@app.command("export-auth")
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
    settings = load_settings()
    endpoint = devices.MqttEndpoint.from_url(settings.mqtt_url) if settings.mqtt_url else None
    username = server_username or (endpoint.username if endpoint else None)
    password = server_password or (endpoint.password if endpoint else None)
    if not username or not password:
        raise fail(
            "the service's broker login is unknown: put it in VAKI_MQTT_URL "
            "(mqtt://user:password@host:1883) or pass --server-username and --server-password"
        )
    logins = run_with_database(settings, devices.active_broker_logins)
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
