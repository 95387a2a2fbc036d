"""Every page and API route that reads a resident's data writes to the access log: the
routes are found in the app itself, so a new one is covered the day it is added."""

from __future__ import annotations

from litestar.routes import HTTPRoute
from sqlmodel import col, func, select

import alerts
import care
from tests.web.conftest import Console, sign_in

# Paths under these read one resident's data (or an alert about one).
RESIDENT_PATHS = (
    "/console/residents/{",
    "/api/residents/{",
    "/console/alerts/{",
    # FHIR: a read, a search and $everything, each asked for the resident as a Patient.
    "/fhir/{",
    "/fhir/Patient/{",
)


async def test_every_route_reading_resident_data_writes_the_access_log(console: Console) -> None:
    world = console.world
    async with console.sessions() as session:
        alert = alerts.Alert(
            resident_id=world.resident,
            team_id=world.north,
            kind="panic",
            dedupe_key=f"resident:{world.resident}:panic",
            severity=alerts.AlertSeverity.CRITICAL,
            title="Panic button",
        )
        plan = alerts.CheckinPlan(
            resident_id=world.resident,
            kind=alerts.CheckinKind.WELLBEING,
            title="How are you today?",
            times=["09:30"],
        )
        session.add_all([alert, plan])
        await session.commit()
        assert alert.id is not None
        assert plan.id is not None
    values: dict[str, int | str] = {
        "resident_id": world.resident,
        "id": world.resident,
        "alert_id": alert.id,
    }
    values |= {"plan_id": plan.id, "resource_type": "Patient", "resource_id": world.resident}
    client = console.client
    # A coordinator of the resident's team may read everything there is to read.
    assert (await sign_in(client, "gudrun")).status_code == 303

    checked = []
    for route in client.app.routes:
        if not isinstance(route, HTTPRoute) or "GET" not in route.methods:
            continue
        template = route.path_format
        if not template.startswith(RESIDENT_PATHS):
            continue
        path = template
        for name in route.path_parameters:
            assert name in values, f"{template}: no test value for {{{name}}}"
            path = path.replace(f"{{{name}}}", str(values[name]))
        before = await entries(console, world.resident)
        response = await client.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code}"
        after = await entries(console, world.resident)
        assert after > before, f"GET {template} read resident data without logging it"
        checked.append(template)
    # The routes this test must at least find (it finds them from the app, not a list).
    assert "/console/residents/{resident_id}" in checked or any(
        t.startswith("/console/residents/{") for t in checked
    )
    assert any(t.startswith("/api/residents/{") for t in checked)
    assert any(t.startswith("/console/alerts/{") for t in checked)
    assert {"/fhir/{resource_type}", "/fhir/{resource_type}/{resource_id}"} <= set(checked)
    assert "/fhir/Patient/{resident_id}/$everything" in checked


async def entries(console: Console, resident_id: int) -> int:
    """How many access-log entries the resident has."""
    async with console.sessions() as session:
        found = await session.exec(
            select(func.count())
            .select_from(care.AccessLogEntry)
            .where(col(care.AccessLogEntry.resident_id) == resident_id)
        )
        return int(found.one())
