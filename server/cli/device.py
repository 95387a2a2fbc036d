"""``vaki device``: register a device with its MQTT credentials, or revoke it."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

import devices
from server.cli.common import broker_address, load_settings, run_with_database

app = typer.Typer(help="Devices in residents' homes.", no_args_is_help=True)


@app.command("add")
def device_add(
    resident: Annotated[int, typer.Option(help="Resident id the device belongs to.")],
    kind: Annotated[devices.DeviceKind, typer.Option(help="What the device is.")],
    label: Annotated[str, typer.Option(help="Free text, e.g. 'bedroom'.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the credentials as JSON.")] = False,
) -> None:
    """Register a device and print its MQTT credentials (shown once, stored hashed)."""
    settings = load_settings()

    async def work(session: AsyncSession) -> devices.ProvisionedDevice:
        return await devices.provision_device(session, kind=kind, resident_id=resident, label=label)

    provisioned = run_with_database(settings, work)
    host, port = broker_address(settings)
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


@app.command("revoke")
def device_revoke(
    device_id: Annotated[str, typer.Argument(help="The device to shut out.")],
) -> None:
    """End a device's access: its secret no longer opens the broker."""
    settings = load_settings()

    async def work(session: AsyncSession) -> devices.Device:
        return await devices.revoke_device(session, device_id)

    device = run_with_database(settings, work)
    typer.echo(f"revoked {device.id}")
