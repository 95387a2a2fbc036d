"""The FHIR R4 API: every response parsed with fhir.resources, the codes and units of each
vital sign, a search paged through, $everything, the bulk export to completion, and a
member of another municipality who gets nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.observation import Observation
from sqlmodel import col, func, select

import alerts
import care
import devices
import video
import web
from tests.web.conftest import PASSWORD, Console

LOINC, MDC, UCUM = "http://loinc.org", "urn:iso:std:iso:11073:10101", "http://unitsofmeasure.org"


@dataclass
class Seeded:
    """Tokens and ids of the test's FHIR world."""

    gudrun: str  # coordinator of the resident's team
    stranger: str  # coordinator in another municipality
    technician: str
    device: str


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def seed(console: Console) -> Seeded:
    """A resident's devices, one reading of every kind, an alert, an answered check-in, a
    call, a contact; and staff of another municipality and a technician, with tokens."""
    world, now = console.world, console.clock.now
    async with console.sessions() as session:
        other = await care.ensure_organisation(session, "Akureyrarbær")
        org = await session.get(care.Organisation, 1)
        assert org is not None
        far = care.CareTeam(name="Far away")
        session.add(far)
        await session.flush()
        assert far.id is not None
        stranger = await care.add_staff_user(
            session,
            username="stranger",
            full_name="Jón Annar",
            password=PASSWORD,
            role=care.StaffRole.COORDINATOR,
            organisation=other,
        )
        tech = await care.add_staff_user(
            session,
            username="tech",
            full_name="Tóti Tækni",
            password=PASSWORD,
            role=care.StaffRole.TECHNICIAN,
            organisation=org,
        )
        assert stranger.id is not None
        assert tech.id is not None
        session.add_all(
            [
                care.TeamMembership(team_id=far.id, staff_id=stranger.id),
                care.TeamMembership(team_id=world.north, staff_id=tech.id),
            ]
        )
        cuff = devices.Device(
            id="bpm-1",
            kind=devices.DeviceKind.BLOOD_PRESSURE_MONITOR,
            resident_id=world.resident,
            label="Cuff",
            secret_hash="x",
            battery_pct=81,
            firmware="2.1",
            online=True,
            last_seen_at=now,
        )
        session.add(cuff)
        await session.flush()
        readings: list[tuple[str, dict[str, Any]]] = [
            (
                "blood_pressure",
                {"systolic": 142, "diastolic": 91, "pulse": 71, "mean_arterial": 108},
            ),
            ("spo2", {"spo2": 96, "pulse": 66}),
            ("weight", {"weight": 71.5, "height": 1.68, "bmi": 25.3}),
            ("temperature", {"temperature": 37.2}),
            ("heart_rate", {"heart_rate": 64}),
            ("glucose", {"glucose": 6.1}),
            ("steps", {"steps": 1200}),
        ]
        for day, (type_, values) in enumerate(readings):
            at = now - timedelta(days=len(readings) - day)
            session.add(
                devices.Reading(
                    device_id=cuff.id,
                    message_id=f"m{day}",
                    resident_id=world.resident,
                    type=type_,
                    values=values,
                    device_ts=at - timedelta(minutes=2),
                    received_at=at,
                    # The last one's device clock was wrong: its arrival is its time.
                    clock_skewed=type_ == "steps",
                )
            )
        plan = alerts.CheckinPlan(
            resident_id=world.resident,
            kind=alerts.CheckinKind.WELLBEING,
            title="How are you today?",
            times=["09:30"],
            questions=[{"id": "pain", "kind": "scale", "min": 0, "max": 10}],
        )
        session.add(plan)
        await session.flush()
        assert plan.id is not None
        session.add_all(
            [
                alerts.Alert(
                    resident_id=world.resident,
                    team_id=world.north,
                    kind="panic",
                    dedupe_key="resident:panic",
                    severity=alerts.AlertSeverity.CRITICAL,
                    title="Panic button",
                    first_seen_at=now - timedelta(hours=2),
                ),
                alerts.CheckinPrompt(
                    plan_id=plan.id,
                    resident_id=world.resident,
                    kind=alerts.CheckinKind.WELLBEING,
                    slot_at=now - timedelta(hours=3),
                    closes_at=now - timedelta(hours=2),
                    status=alerts.PromptStatus.ANSWERED,
                    answered_at=now - timedelta(hours=3),
                    answer="good",
                    answers={"pain": 2},
                ),
                video.Consultation(
                    resident_id=world.resident,
                    team_id=world.north,
                    kind=video.ConsultationKind.SCHEDULED,
                    status=video.ConsultationStatus.ENDED,
                    started_at=now - timedelta(hours=5),
                    ended_at=now - timedelta(hours=5) + timedelta(minutes=12),
                ),
                care.Contact(
                    resident_id=world.resident,
                    name="Anna Jónsdóttir",
                    relationship="daughter",
                    phone="+3545551234",
                ),
            ]
        )
        tokens = [
            await care.create_api_token(session, name) for name in ("gudrun", "stranger", "tech")
        ]
        await session.commit()
    return Seeded(tokens[0], tokens[1], tokens[2], "bpm-1")


def parsed(response: httpx.Response) -> Any:
    """The response's resource, parsed and validated by fhir.resources."""
    assert response.headers["content-type"].startswith("application/fhir+json"), response.text
    body = response.json()
    return get_fhir_model_class(body["resourceType"]).model_validate(body)


async def pages(client: httpx.AsyncClient, url: str, token: str) -> list[Any]:
    """Every page of a search, following the next links."""
    found = []
    while url:
        bundle = parsed(await client.get(url, headers=auth(token)))
        assert isinstance(bundle, Bundle)
        found.append(bundle)
        nexts = [link.url for link in bundle.link or [] if link.relation == "next"]
        url = urlsplit(str(nexts[0]))._replace(scheme="", netloc="").geturl() if nexts else ""
    return found


def by_code(observations: list[Any]) -> dict[str, Any]:
    """Observations by their first LOINC code."""
    return {o.code.coding[0].code: o for o in observations}


async def test_the_capability_statement_lists_what_is_served(console: Console) -> None:
    response = await console.client.get("/fhir/metadata")
    statement = parsed(response)
    assert isinstance(statement, CapabilityStatement)
    assert statement.fhirVersion == "4.0.1"
    served = {r.type: r for r in statement.rest[0].resource}  # type: ignore[index,union-attr]
    assert set(served) == {
        "Patient",
        "Device",
        "Observation",
        "Flag",
        "QuestionnaireResponse",
        "Questionnaire",
        "Encounter",
        "RelatedPerson",
        "CareTeam",
        "AuditEvent",
    }
    params = {p.name for p in served["Observation"].searchParam or []}
    assert params == {"patient", "code", "category", "date", "_lastUpdated", "_count"}
    assert [o.name for o in served["Patient"].operation or []] == ["everything", "export"]


async def test_every_vital_sign_has_loinc_mdc_and_ucum(console: Console) -> None:
    seeded = await seed(console)
    bundle = parsed(
        await console.client.get("/fhir/Observation?_count=100", headers=auth(seeded.gudrun))
    )
    observations = [e.resource for e in bundle.entry]
    assert all(isinstance(o, Observation) for o in observations)
    found = by_code(observations)
    expected = {
        "85354-9": ("150020", None, None),
        "2708-6": ("150456", 96, "%"),
        "29463-7": ("188736", 71.5, "kg"),
        "8302-2": ("188740", 168, "cm"),
        "39156-5": ("188752", 25.3, "kg/m2"),
        "8310-5": ("150364", 37.2, "Cel"),
        "14743-9": ("160184", 6.1, "mmol/L"),
        "55423-8": (None, 1200, "{steps}"),
    }
    for loinc, (mdc, value, unit) in expected.items():
        observation = found[loinc]
        codes = {(c.system, c.code) for c in observation.code.coding}
        assert (LOINC, loinc) in codes
        if mdc is not None:
            assert (MDC, mdc) in codes, loinc
        if value is not None:
            quantity = observation.valueQuantity
            assert quantity.system == UCUM
            assert (float(quantity.value), quantity.code) == (value, unit), loinc
        assert observation.device.reference == "Device/bpm-1"
        assert observation.subject.reference == f"Patient/{console.world.resident}"
    panel = found["85354-9"]
    assert panel.valueQuantity is None
    components = {c.code.coding[0].code: c.valueQuantity for c in panel.component}
    assert {k: (float(v.value), v.code) for k, v in components.items()} == {
        "8480-6": (142.0, "mm[Hg]"),
        "8462-4": (91.0, "mm[Hg]"),
        "8478-0": (108.0, "mm[Hg]"),
    }
    assert panel.category[0].coding[0].code == "vital-signs"
    # Three heart rates: the cuff's pulse, the oximeter's and a heart-rate reading.
    heart = [o for o in observations if o.code.coding[0].code == "8867-4"]
    assert sorted((o.code.coding[1].code, float(o.valueQuantity.value)) for o in heart) == [
        ("149514", 64.0),
        ("149530", 66.0),
        ("149546", 71.0),
    ]
    # The device's clock when believable, the arrival when it was not.
    async with console.sessions() as session:
        rows = {r.type: r for r in (await session.exec(select(devices.Reading))).all()}
    assert panel.effectiveDateTime == care.as_utc(rows["blood_pressure"].device_ts)  # type: ignore[arg-type]
    assert found["55423-8"].effectiveDateTime == care.as_utc(rows["steps"].received_at)


async def test_a_search_pages_through_every_observation_once(console: Console) -> None:
    seeded = await seed(console)
    everything = parsed(
        await console.client.get("/fhir/Observation?_count=500", headers=auth(seeded.gudrun))
    )
    all_ids = [e.resource.id for e in everything.entry]
    assert len(all_ids) == 11
    paged = await pages(console.client, "/fhir/Observation?_count=5", seeded.gudrun)
    assert [len(b.entry or []) for b in paged] == [5, 5, 1]
    assert [e.resource.id for b in paged for e in b.entry or []] == all_ids
    # Filters: a code with its system, a category, a date range.
    bp = parsed(
        await console.client.get(
            "/fhir/Observation?code=http://loinc.org|85354-9", headers=auth(seeded.gudrun)
        )
    )
    assert [e.resource.code.coding[0].code for e in bp.entry] == ["85354-9"]
    activity = parsed(
        await console.client.get("/fhir/Observation?category=activity", headers=auth(seeded.gudrun))
    )
    assert [e.resource.code.coding[0].code for e in activity.entry] == ["55423-8"]
    taken = console.clock.now - timedelta(days=4, minutes=2)  # the thermometer's reading
    start = (taken - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    end = (taken + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    dated = parsed(
        await console.client.get(
            "/fhir/Observation",
            params={"date": [f"ge{start}", f"le{end}"]},
            headers=auth(seeded.gudrun),
        )
    )
    assert {e.resource.code.coding[0].code for e in dated.entry} == {"8310-5"}
    wrong = await console.client.get("/fhir/Observation?colour=red", headers=auth(seeded.gudrun))
    assert wrong.status_code == 400
    assert parsed(wrong).issue[0].code == "invalid"


async def test_every_resource_type_reads_and_validates(console: Console) -> None:
    seeded = await seed(console)
    client, resident = console.client, console.world.resident
    for name in ("Patient", "Device", "Flag", "QuestionnaireResponse", "Questionnaire"):
        bundle = parsed(await client.get(f"/fhir/{name}", headers=auth(seeded.gudrun)))
        assert bundle.entry, name
        for entry in bundle.entry:
            one = parsed(
                await client.get(f"/fhir/{name}/{entry.resource.id}", headers=auth(seeded.gudrun))
            )
            assert one.id == entry.resource.id
    for name in ("Encounter", "RelatedPerson", "CareTeam", "AuditEvent"):
        bundle = parsed(await client.get(f"/fhir/{name}", headers=auth(seeded.gudrun)))
        assert bundle.entry, name
    device = parsed(await client.get("/fhir/Device/bpm-1", headers=auth(seeded.gudrun)))
    assert device.patient.reference == f"Patient/{resident}"
    assert device.specialization[0].systemType.coding[0].code == "528391"
    assert float(device.property[0].valueQuantity[0].value) == 81
    flag = parsed(await client.get("/fhir/Flag", headers=auth(seeded.gudrun))).entry[0].resource
    assert (flag.status, flag.category[0].coding[0].code) == ("active", "safety")
    encounter = parsed(await client.get("/fhir/Encounter", headers=auth(seeded.gudrun)))
    assert encounter.entry[0].resource.class_fhir.code == "VR"
    everything = parsed(
        await client.get(f"/fhir/Patient/{resident}/$everything", headers=auth(seeded.gudrun))
    )
    kinds = {e.resource.get_resource_type() for e in everything.entry}
    assert kinds >= {"Patient", "Device", "Observation", "Flag", "Encounter", "RelatedPerson"}


async def test_another_municipality_and_a_technician_get_nothing(console: Console) -> None:
    seeded = await seed(console)
    client, resident = console.client, console.world.resident
    for name in ("Patient", "Observation", "Device", "Flag", "Encounter", "AuditEvent"):
        bundle = parsed(await client.get(f"/fhir/{name}", headers=auth(seeded.stranger)))
        assert not bundle.entry, name
    for path in (f"/fhir/Patient/{resident}", f"/fhir/Patient/{resident}/$everything"):
        refused = await client.get(path, headers=auth(seeded.stranger))
        assert refused.status_code == 404
        assert parsed(refused).issue[0].code == "not-found"
    # A technician sees devices, never readings.
    assert parsed(await client.get("/fhir/Device", headers=auth(seeded.technician))).entry
    refused = await client.get("/fhir/Observation", headers=auth(seeded.technician))
    assert refused.status_code == 403
    assert (await client.get("/fhir/Observation")).status_code == 401


async def test_every_fhir_read_is_in_the_access_log(console: Console) -> None:
    seeded = await seed(console)

    async def logged() -> int:
        async with console.sessions() as session:
            found = await session.exec(
                select(func.count())
                .select_from(care.AccessLogEntry)
                .where(col(care.AccessLogEntry.action) == "fhir.read")
            )
            return int(found.one())

    await console.client.get("/fhir/Observation?_count=1", headers=auth(seeded.gudrun))
    assert await logged() == 1
    await console.client.get("/fhir/Device/bpm-1", headers=auth(seeded.gudrun))
    assert await logged() == 2
    await console.client.get("/fhir/Observation", headers=auth(seeded.stranger))
    assert await logged() == 2  # nothing read, nothing logged


async def test_a_bulk_export_runs_to_completion(console: Console) -> None:
    seeded = await seed(console)
    client = console.client
    kick = await client.get(
        "/fhir/$export?_type=Patient,Observation,Flag",
        headers=auth(seeded.gudrun) | {"Prefer": "respond-async"},
    )
    assert kick.status_code == 202, kick.text
    status_url = urlsplit(kick.headers["content-location"]).path
    worker = console.client.app.state[web.EXPORT_STATE_KEY]
    assert await worker.idle()
    done = await client.get(status_url, headers=auth(seeded.gudrun))
    assert done.status_code == 200, done.text
    manifest = done.json()
    assert [(o["type"], o["count"]) for o in manifest["output"]] == [
        ("Patient", 1),
        ("Observation", 11),
        ("Flag", 1),
    ]
    for output in manifest["output"]:
        file = await client.get(urlsplit(output["url"]).path, headers=auth(seeded.gudrun))
        assert file.headers["content-type"].startswith("application/fhir+ndjson")
        lines = file.text.splitlines()
        assert len(lines) == output["count"]
        model = get_fhir_model_class(output["type"])
        for line in lines:
            model.model_validate_json(line)
    # Someone else cannot read the job or its files.
    assert (await client.get(status_url, headers=auth(seeded.stranger))).status_code == 404
    file_path = urlsplit(manifest["output"][0]["url"]).path
    assert (await client.get(file_path, headers=auth(seeded.stranger))).status_code == 404
    # Patient-level export of another municipality: done, and empty.
    kick = await client.get("/fhir/Patient/$export", headers=auth(seeded.stranger))
    assert kick.status_code == 202
    assert await worker.idle()
    theirs = await client.get(
        urlsplit(kick.headers["content-location"]).path, headers=auth(seeded.stranger)
    )
    assert {o["count"] for o in theirs.json()["output"]} == {0}
    deleted = await client.delete(status_url, headers=auth(seeded.gudrun))
    assert deleted.status_code == 202
    assert (await client.get(status_url, headers=auth(seeded.gudrun))).status_code == 404
