"""``vaki simulate``: simulated homes (from homesim) against the configured or running broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices
import homesim
from server.cli.common import broker_address, fail, load_settings, run_with_database
from server.logging import configure_logging


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
    settings = load_settings()
    configure_logging(settings)
    scenarios = frozenset(scenario or ())
    unknown = scenarios - homesim.SCENARIOS
    if unknown:
        raise fail(f"unknown scenario {sorted(unknown)[0]!r}; known: {sorted(homesim.SCENARIOS)}")
    host, port = broker_address(settings)
    if not settings.mqtt_url and devices.read_broker_address(settings.data_dir) is None:
        raise fail(
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

    async def work(session: AsyncSession) -> list[homesim.SimulatedHome]:
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
                    homesim.SimulatedDevice(provisioned.device.id, kind, provisioned.secret)
                )
            made.append(
                homesim.SimulatedHome(
                    resident.full_name, resident.time_zone, tuple(fleet), scenarios
                )
            )
        return made

    virtual_homes = run_with_database(settings, work)
    typer.echo(f"{homes} homes on {host}:{port}, {speed:g}x speed; Ctrl-C stops them", err=True)
    simulator = homesim.Simulator(virtual_homes, host, port, speed=speed)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(simulator.run(seconds))
    stats = simulator.stats
    typer.echo(json.dumps({"published": dict(stats.published), "acked": dict(stats.acked)}))
