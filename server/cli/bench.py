"""``vaki bench``: run a benchmark from the bench package, imported only when one runs."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer

from server.cli.common import fail, load_settings
from server.errors import StartupError
from server.settings import Settings

app = typer.Typer(
    help="Benchmarks that print their figures (from a source checkout: the bench package is"
    " not in the wheel, and is imported only when a benchmark runs).",
    no_args_is_help=True,
)


def _require_bench() -> None:
    """Fail in one line where the benchmarks are missing: they are not in the wheel."""
    if importlib.util.find_spec("bench") is None:
        raise fail(
            "the benchmarks are not installed with the wheel: run vaki bench from a source checkout"
        )


def _run_bench(
    database_url: str | None,
    broker: str,
    run: Callable[[Settings], Coroutine[Any, Any, dict[str, Any]]],
) -> dict[str, Any]:
    """Run a benchmark in a throwaway data directory against the chosen broker."""
    import shutil

    import bench

    if broker not in ("configured", "embedded", "mosquitto"):
        raise fail(f"--broker must be configured, embedded or mosquitto, not {broker!r}")
    run_settings, scratch = bench.bench_settings(load_settings(), database_url)
    try:
        with contextlib.ExitStack() as stack:
            if broker == "embedded":
                run_settings.mqtt_url = None
            elif broker == "mosquitto":
                run_settings.mqtt_url = stack.enter_context(bench.tuned_mosquitto(scratch))
            return asyncio.run(run(run_settings))
    except StartupError as err:
        raise fail(str(err)) from err
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _print_figures(figures: dict[str, Any], as_json: bool) -> None:
    """The figures, one per line for people, and always as JSON on the last line."""
    if not as_json:
        for key, value in figures.items():
            typer.echo(f"{key:<28} {value}")
    typer.echo(json.dumps(figures))


@app.command("ingest")
def bench_ingest(
    seconds: Annotated[float, typer.Option(help="Publishing time of each phase.")] = 20.0,
    device_count: Annotated[int, typer.Option("--devices", help="Virtual devices.")] = 40,
    publishers: Annotated[int, typer.Option(help="Publisher processes.")] = 2,
    window: Annotated[int, typer.Option(help="Unacked readings each device keeps.")] = 50,
    batch: Annotated[int, typer.Option(help="Readings per message (a hub batches).")] = 1,
    workers: Annotated[
        int, typer.Option(help="Ingest worker processes (MQTT 5 shared subscription).")
    ] = 0,
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
    _require_bench()
    import bench

    config = bench.BenchConfig(
        seconds=5.0 if quick else seconds,
        devices=device_count,
        publishers=publishers,
        window=window,
        batch=batch,
        workers=workers,
    )
    _print_figures(
        _run_bench(database_url, broker, lambda run: bench.run_ingest_bench(run, config)), as_json
    )


@app.command("alerts")
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
    _require_bench()
    import bench

    config = bench.AlertBenchConfig(
        seconds=10.0 if quick else seconds,
        background_per_s=background,
        panics=10 if quick else panics,
        tier_timeout_s=2,
    )
    figures = _run_bench(None, broker, lambda run: bench.run_alert_bench(run, config))
    _print_figures(figures, as_json)


@app.command("soak")
def bench_soak(
    seconds: Annotated[float, typer.Option(help="How long readings and panics go on.")] = 300.0,
    readings: Annotated[int, typer.Option(help="Background readings per second.")] = 100,
    panic_every: Annotated[float, typer.Option(help="Seconds between panic presses.")] = 3.0,
    broker: Annotated[
        str, typer.Option(help="configured, embedded (the default's), or mosquitto.")
    ] = "configured",
    quick: Annotated[
        bool, typer.Option("--quick", help="One minute (unless --seconds says otherwise).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Last line: one JSON object.")] = False,
) -> None:
    """Minutes of readings plus panics: panic → console p50/p99, panics lost, memory growth."""
    _require_bench()
    import bench

    if quick and seconds == 300.0:
        seconds = 60.0
    config = bench.SoakConfig(seconds=seconds, readings_per_s=readings, panic_every_s=panic_every)
    figures = _run_bench(None, broker, lambda run: bench.run_soak_bench(run, config))
    _print_figures(figures, as_json)


@app.command("checkins")
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
    _require_bench()
    import bench

    config = bench.CheckinBenchConfig(
        residents=min(residents, 1000) if quick else residents, quick=quick
    )
    figures = _run_bench(database_url, broker, lambda run: bench.run_checkin_bench(run, config))
    if config.residents < residents:
        figures = {"note": f"quick run: {config.residents} residents, not {residents}", **figures}
    _print_figures(figures, as_json)


@app.command("video")
def bench_video(
    max_calls: Annotated[int, typer.Option(help="Stop adding calls at this many.")] = 40,
    clients: Annotated[int, typer.Option(help="Processes running the participants.")] = 2,
    quick: Annotated[bool, typer.Option("--quick", help="Short run (under a minute).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Last line: one JSON object.")] = False,
) -> None:
    """Relayed 1:1 calls (640×480 30 fps + sound) added until frames arrive late: max calls,
    server CPU per stream, call setup time, against aiortc's stock transcoding path."""
    _require_bench()
    import bench

    config = bench.VideoBenchConfig(
        quick=quick,
        max_calls=min(max_calls, 24) if quick else max_calls,
        step=4 if quick else 2,
        window_s=4.0 if quick else 8.0,
        client_processes=clients,
    )
    _print_figures(bench.run_video_bench(load_settings(), config), as_json)
