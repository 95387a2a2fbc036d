"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, get
from litestar.datastructures import State
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from devices import LaneProbe, MqttUnavailableError
from server.db import ping
from server.health_alarms import alarm_path_checks
from server.runtime import Runtime


async def _lane_check(probe: LaneProbe) -> dict[str, Any]:
    """One lane: a probe sent through the broker came back, and how fast."""
    try:
        milliseconds = await probe.check()
    except MqttUnavailableError as err:
        return {"ok": False, "detail": str(err)}
    return {"ok": True, "round_trip_ms": round(milliseconds, 1)}


async def _mqtt_check(runtime: Runtime) -> dict[str, Any]:
    """Each lane proven end to end; never the broker's address or login."""
    probes = runtime.lane_probes
    mqtt: dict[str, Any] = {"ok": False, "embedded": runtime.broker is not None}
    if not probes:
        mqtt["detail"] = "not started"
        return mqtt
    results = await asyncio.gather(*(_lane_check(probe) for probe in probes.values()))
    lanes = dict(zip(probes, results, strict=True))
    mqtt["lanes"] = lanes
    mqtt["ok"] = all(lane["ok"] for lane in lanes.values())
    dead = [name for name, lane in lanes.items() if not lane["ok"]]
    if dead:
        mqtt["detail"] = f"no messages flow on the {' and '.join(dead)} lane"
    broker = runtime.broker
    if broker is not None and not broker.is_alive():
        mqtt.update(ok=False, detail="the broker process is not running")
    return mqtt


class HealthController(Controller):
    """``/healthz`` says the process answers; ``/readyz`` says whether it can do its work."""

    include_in_schema = True
    tags = ("operations",)

    @get("/healthz", summary="Liveness: the process answers")
    async def healthz(self) -> dict[str, str]:
        """Always ok while the process serves requests."""
        return {"status": "ok"}

    @get("/readyz", summary="Readiness: database, both MQTT lanes end to end, and scheduler")
    async def readyz(self, state: State) -> Response[dict[str, Any]]:
        """200 with each part's status when all are up, 503 when one is down."""
        runtime: Runtime = state.runtime
        checks: dict[str, dict[str, Any]] = {}

        if runtime.engine is None:
            checks["database"] = {"ok": False, "detail": "not started"}
        else:
            try:
                await ping(runtime.engine)
                checks["database"] = {"ok": True, "backend": runtime.engine.dialect.name}
            except Exception as err:  # any failure means "not ready"; say which
                checks["database"] = {"ok": False, "detail": type(err).__name__}

        checks["mqtt"] = await _mqtt_check(runtime)

        ingestor = runtime.ingestor
        ingestion: dict[str, Any] = {"ok": ingestor is not None and ingestor.database_ok}
        if ingestor is not None:
            ingestion["backlog"] = ingestor.backlog
            if ingestor.last_error:
                ingestion["detail"] = ingestor.last_error
        checks["ingestion"] = ingestion

        workers = runtime.ingest_workers
        if workers is not None:
            checks["ingest_workers"] = {
                "ok": workers.alive == workers.count,
                "alive": workers.alive,
                "wanted": workers.count,
                "restarts": workers.restarts,
            }

        scheduler = runtime.scheduler
        checks["scheduler"] = {"ok": scheduler is not None and scheduler.running}
        checks.update(alarm_path_checks(runtime))

        ready = all(part["ok"] for part in checks.values())
        return Response(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE,
        )
