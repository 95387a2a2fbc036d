"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.datastructures import State
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from server.db import ping
from server.runtime import Runtime


class HealthController(Controller):
    """``/healthz`` says the process answers; ``/readyz`` says whether it can do its work."""

    include_in_schema = True
    tags = ("operations",)

    @get("/healthz", summary="Liveness: the process answers")
    async def healthz(self) -> dict[str, str]:
        """Always ok while the process serves requests."""
        return {"status": "ok"}

    @get("/readyz", summary="Readiness: database, MQTT broker and scheduler")
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

        link = runtime.mqtt
        broker = runtime.broker
        alarm_lane = runtime.alarm_lane
        mqtt: dict[str, Any] = {
            "ok": link is not None
            and link.connected
            and alarm_lane is not None
            and alarm_lane.connected,
            "broker": link.endpoint.describe() if link else None,
            "embedded": broker is not None,
        }
        for lane in (link, alarm_lane):
            if lane is not None and not lane.connected:
                mqtt["detail"] = lane.last_error
        if broker is not None and not broker.is_alive():
            mqtt.update(ok=False, detail="embedded broker process is not running")
        checks["mqtt"] = mqtt

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

        ready = all(part["ok"] for part in checks.values())
        return Response(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE,
        )
