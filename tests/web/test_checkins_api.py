"""Staff edit a resident's check-in plans (problems told in plain words) and read how the
resident keeps to them; other teams' residents stay invisible, and every read is logged."""

from __future__ import annotations

from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
from server.app import create_app
from server.db import create_engine, session_factory
from server.settings import Settings


async def test_plans_are_edited_by_the_team_and_refused_with_reasons(
    settings: Settings, mosquitto: tuple[str, int], sqlite_url: str
) -> None:
    host, port = mosquitto
    settings.mqtt_url = f"mqtt://{host}:{port}"
    settings.mqtt_session_expiry_s = 60
    app = create_app(settings)
    engine = create_engine(sqlite_url)
    sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
    async with AsyncTestClient(app=app) as client:
        async with sessions() as session:
            org = await care.ensure_organisation(session, "Fjallabyggð")
            ours, theirs = care.CareTeam(name="Siglufjörður"), care.CareTeam(name="Dalvík")
            session.add_all([ours, theirs])
            await session.flush()
            tokens = {}
            for username, role, team in (
                ("helga", care.StaffRole.NURSE, ours),
                ("kasia", care.StaffRole.HOME_CARE_WORKER, ours),
                ("olafur", care.StaffRole.NURSE, theirs),
            ):
                member = await care.add_staff_user(
                    session,
                    username=username,
                    full_name=username.title(),
                    password="x" * 12,
                    role=role,
                    organisation=org,
                )
                assert member.id is not None
                assert team.id is not None
                session.add(care.TeamMembership(team_id=team.id, staff_id=member.id))
                token = await care.create_api_token(session, username)
                tokens[username] = {"Authorization": f"Bearer {token}"}
            resident = care.Resident(full_name="Guðrún Sigurðardóttir")
            session.add(resident)
            await session.flush()
            assert resident.id is not None
            assert ours.id is not None
            session.add(care.ResidentTeam(resident_id=resident.id, team_id=ours.id))
            await session.commit()
        url = f"/api/residents/{resident.id}/checkin-plans"
        bad = {"kind": "wellbeing", "title": "", "times": ["25:00"], "window_min": 2}
        refused = await client.post(url, json=bad, headers=tokens["helga"])
        assert refused.status_code == 422, refused.text
        assert refused.json()["extra"]["problems"] == [
            "Give the plan a title the resident will see",
            "'25:00' is not a time of day; write it like 08:30",
            "The resident needs between 5 minutes and 4 hours to answer",
            "The reminder must come after the prompt, before the window closes",
        ]
        questionnaire = {
            "kind": "questionnaire",
            "title": "Vikulegar spurningar",
            "times": ["10:00"],
            "weekdays": [1],
            "questions": [{"id": "pain"}, {"id": "breathlessness"}],
        }
        created = await client.post(url, json=questionnaire, headers=tokens["helga"])
        assert created.status_code == 201, created.text
        plan_id = created.json()["id"]
        questionnaire["questions"] = [{"id": "sleep"}, {"id": "mood"}]
        changed = await client.put(f"{url}/{plan_id}", json=questionnaire, headers=tokens["helga"])
        assert changed.status_code == 200, changed.text
        # A home-care worker of the team reads plans but does not change them.
        listed = await client.get(url, headers=tokens["kasia"])
        assert [p["questions"] for p in listed.json()] == [[{"id": "sleep"}, {"id": "mood"}]]
        denied = await client.put(f"{url}/{plan_id}", json=questionnaire, headers=tokens["kasia"])
        assert denied.status_code == 403
        # Another team's nurse cannot tell the resident exists.
        for path in (url, f"/api/residents/{resident.id}/adherence"):
            hidden = await client.get(path, headers=tokens["olafur"])
            assert hidden.status_code == 404
        adherence = await client.get(
            f"/api/residents/{resident.id}/adherence", headers=tokens["helga"]
        )
        assert [p["days"] for p in adherence.json()["periods"]] == [7, 30]
        assert adherence.json()["periods"][0]["share_on_time"] is None
    async with sessions() as session:
        log = (
            await session.exec(
                select(care.AccessLogEntry.action).where(
                    care.AccessLogEntry.resident_id == resident.id
                )
            )
        ).all()
        plans = (await session.exec(select(alerts.CheckinPlan))).all()
    # Refused edits read nothing and leave no entry; every read and save does.
    assert log == [
        "edit check-in plans",
        "edit check-in plans",
        "read check-in plans",
        "read check-in adherence",
    ]
    assert len(plans) == 1
    await engine.dispose()
