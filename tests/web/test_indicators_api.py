"""The service figures as JSON, CSV and FHIR MeasureReports: for coordinators of their own
teams only."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle

from tests.web.conftest import Console, sign_in


async def test_a_coordinator_downloads_the_month_and_others_get_nothing(console: Console) -> None:
    client, world = console.client, console.world
    assert (await sign_in(client, "gudrun")).status_code == 303
    figures = await client.get(f"/api/indicators?team={world.north}&from=2026-11-01&to=2026-12-01")
    assert figures.status_code == 200, figures.text
    body = figures.json()
    assert body["teams"] == ["North"]
    assert (body["from"], body["to"]) == ("2026-11-01T00:00:00+00:00", "2026-12-01T00:00:00+00:00")
    assert [s["residents"] for s in body["served"]] == ["<5", "<5"]
    assert [a["severity"] for a in body["alarms"]] == ["critical", "high", "normal", "technical"]

    csv = await client.get("/api/indicators?month=2026-11&format=csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert "vaki-indicators-2026-11-01-2026-12-01.csv" in csv.headers["content-disposition"]
    assert csv.text.splitlines()[0] == "section,scope,group,figure,value"

    report = await client.get("/api/indicators/measure-report?month=2026-11")
    assert report.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(report.json())
    assert bundle.type == "collection"
    assert {type(e.resource).__name__ for e in bundle.entry or []} == {"MeasureReport"}

    # Another team's figures are not hers; a bad month is said so.
    other = await client.get(f"/api/indicators?team={world.south}")
    assert other.status_code == 404
    assert (await client.get("/api/indicators?month=November")).status_code == 400

    # A nurse may not see them at all; nor may someone not signed in.
    client.cookies.clear()
    assert (await client.get("/api/indicators")).status_code == 401
    assert (await sign_in(client, "helga")).status_code == 303
    assert (await client.get("/api/indicators")).status_code == 403
