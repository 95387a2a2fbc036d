"""The alert API and the live alert stream for consoles and integrations."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from litestar import Controller, Request, WebSocket, get, post, websocket
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, FromQuery, JSONBody
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
from web.auth import StaffIdentity, identify, still_identified, stream_recheck_interval

# Provided by the app under these names.
Sessions = NamedDependency[async_sessionmaker[AsyncSession]]

Alerts = NamedDependency[alerts.AlertService]


class Resolution(BaseModel):
    """How an alert ended."""

    outcome: str = Field(min_length=1, max_length=64, examples=["visited, resident fine"])
    note: str = Field(default="", max_length=2000)


def _alert_json(alert: alerts.Alert) -> dict[str, Any]:
    """An alert as the API shows it."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "severity": alert.severity,
        "status": alert.status,
        "title": alert.title,
        "count": alert.count,
        "team_id": alert.team_id,
        "resident_id": alert.resident_id,
        "device_id": alert.device_id,
        "escalation": alert.escalation,
        "first_seen_at": alert.first_seen_at.isoformat(),
        "last_seen_at": alert.last_seen_at.isoformat(),
        "acknowledged_by": alert.acknowledged_by,
        "outcome": alert.outcome,
    }


class AlertsController(Controller):
    """Alerts of the caller's care teams: list, acknowledge, resolve, live stream."""

    path = "/api/alerts"
    tags = ("alerts",)

    @get("/", summary="Open and acknowledged alerts of my teams, critical first")
    async def list_alerts(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        alert_service: Alerts,
        include_resolved: FromQuery[bool] = False,
    ) -> list[dict[str, Any]]:
        """The caller's alert queue (a technician's: technical alerts only)."""
        identity = await identify(request, sessions)
        found = await alert_service.queue(identity.actor, include_resolved=include_resolved)
        return [_alert_json(alert) for alert in found]

    @post("/{alert_id:int}/acknowledge", summary="I have it: stop escalating")
    async def acknowledge(
        self,
        request: Request[Any, Any, Any],
        alert_id: FromPath[int],
        sessions: Sessions,
        alert_service: Alerts,
    ) -> dict[str, Any]:
        """Acknowledge an open alert (409 when it is not open)."""
        identity = await identify(request, sessions)
        change = await alert_service.acknowledge(identity.actor, alert_id)
        return change.to_json()

    @post("/{alert_id:int}/resolve", summary="Close with an outcome and a note")
    async def resolve(
        self,
        request: Request[Any, Any, Any],
        alert_id: FromPath[int],
        data: JSONBody[Resolution],
        sessions: Sessions,
        alert_service: Alerts,
    ) -> dict[str, Any]:
        """Resolve an alert (409 when it is resolved already)."""
        identity = await identify(request, sessions)
        change = await alert_service.resolve(
            identity.actor, alert_id, outcome=data.outcome, note=data.note
        )
        return change.to_json()

    @websocket("/stream")
    async def stream(
        self,
        socket: WebSocket[Any, Any, Any],
        sessions: Sessions,
        channels: NamedDependency[ChannelsPlugin],
    ) -> None:
        """Every change of my teams' alerts, as JSON text frames, as it happens (a
        technician's: technical alerts only).

        The stream lasts as long as its credential: it closes (4401) when the session signs
        out or ends, the token is revoked or expires, or the staff member is deactivated,
        and (4403) when they leave one of their care teams; the console then reconnects
        and is asked to sign in, or sees its new teams.
        """
        identity = await identify(socket, sessions)
        actor = identity.actor
        await socket.accept()
        async with channels.start_subscription(["alerts"]) as subscriber:

            async def forward() -> None:
                async for message in subscriber.iter_events():
                    change = json.loads(message)
                    if alerts.may_see(actor, change.get("team_id"), change.get("severity", "")):
                        await socket.send_text(json.dumps(change))

            # The stream is one-way: reading only tells us when the console goes away, and
            # then the forwarding stops at once, not at the next alert.
            forwarding = asyncio.create_task(forward())
            watching = asyncio.create_task(_credential_lapses(socket, sessions, identity))
            closing = asyncio.create_task(_wait_for_close(socket))
            try:
                done, _ = await asyncio.wait(
                    {forwarding, watching, closing}, return_when=asyncio.FIRST_COMPLETED
                )
                if watching in done and (lapse := watching.result()) is not None:
                    code, reason = lapse
                    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                        await socket.close(code=code, reason=reason)
            finally:
                for task in (forwarding, watching, closing):
                    task.cancel()
                for task in (forwarding, watching, closing):
                    with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                        await task


async def _credential_lapses(
    socket: WebSocket[Any, Any, Any],
    sessions: async_sessionmaker[AsyncSession],
    identity: StaffIdentity,
) -> tuple[int, str] | None:
    """Wait until the stream's credential no longer holds; the close code and reason."""
    interval = stream_recheck_interval(socket)
    while True:
        await asyncio.sleep(interval)
        now = await still_identified(socket, sessions)
        if now is None:
            return 4401, "signed out"
        if not identity.team_ids <= now.team_ids:
            return 4403, "care teams changed"


async def _wait_for_close(socket: WebSocket[Any, Any, Any]) -> None:
    """Read until the client goes away (the stream is one-way)."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_data(mode="text")
