"""The assembled app: probes, OpenAPI and metrics, with real database and brokers."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from server.app import create_app
from server.settings import Settings


async def test_ready_with_embedded_broker_and_sqlite(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        response = await client.get("/readyz")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ready"
        assert body["checks"]["database"] == {"ok": True, "backend": "sqlite"}
        assert body["checks"]["mqtt"]["ok"] is True
        assert body["checks"]["mqtt"]["embedded"] is True
        assert body["checks"]["scheduler"] == {"ok": True}
        assert body["checks"]["ingestion"] == {"ok": True, "backlog": 0}


async def test_ready_with_mosquitto_and_postgresql(
    settings: Settings, mosquitto: tuple[str, int], postgres_url: str
) -> None:
    host, port = mosquitto
    settings.mqtt_url = f"mqtt://{host}:{port}"
    settings.database_url = postgres_url
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.get("/readyz")
        assert response.status_code == 200, response.text
        checks = response.json()["checks"]
        assert checks["database"]["backend"] == "postgresql"
        mqtt = checks["mqtt"]
        assert mqtt["ok"] is True
        assert mqtt["embedded"] is False
        # Each lane proved by a probe that went through the broker and came back.
        assert set(mqtt["lanes"]) == {"readings", "alarms"}
        assert all(lane["ok"] and lane["round_trip_ms"] >= 0 for lane in mqtt["lanes"].values())
        # The broker's address (and any login in it) is nobody's business.
        assert str(port) not in response.text
        assert "mqtt://" not in response.text


async def test_not_ready_while_the_broker_is_unreachable(settings: Settings) -> None:
    import socket

    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        closed_port = placeholder.getsockname()[1]
    settings.mqtt_url = f"mqtt://127.0.0.1:{closed_port}"
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not ready"
        assert body["checks"]["mqtt"]["ok"] is False
        assert body["checks"]["database"]["ok"] is True
        # Liveness does not depend on the broker.
        assert (await client.get("/healthz")).status_code == 200


async def test_openapi_metrics_and_front_page(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(settings)) as client:
        schema = (await client.get("/schema/openapi.json")).json()
        assert {"/healthz", "/readyz"} <= set(schema["paths"])
        await client.get("/")
        metrics = (await client.get("/metrics")).text
        assert (
            'vaki_requests_total{app_name="vaki",method="GET",path="/",status_code="200"}'
            in metrics
        )
        front = await client.get("/")
        assert front.status_code == 200
        assert "Vaki" in front.text
