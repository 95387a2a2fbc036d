"""The policy editor's API refuses a policy that would leave an alert with nobody to tell."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
from server.app import create_app
from server.db import create_engine, session_factory
from server.settings import Settings


async def test_saving_a_policy_names_the_gaps_then_saves(
    settings: Settings, mosquitto: tuple[str, int], sqlite_url: str, tmp_path: Path
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
            team = care.CareTeam(name="Team")
            session.add(team)
            await session.flush()
            nurse = await care.add_staff_user(
                session,
                username="helga",
                full_name="Helga B.",
                password="x" * 12,
                role=care.StaffRole.COORDINATOR,
                organisation=org,
                email="helga@vaki.example",
            )
            worker = await care.add_staff_user(
                session,
                username="kasia",
                full_name="Kasia N.",
                password="x" * 12,
                role=care.StaffRole.HOME_CARE_WORKER,
                organisation=org,
            )
            assert team.id is not None
            assert nurse.id is not None
            assert worker.id is not None
            session.add_all(
                [
                    care.TeamMembership(team_id=team.id, staff_id=nurse.id),
                    care.TeamMembership(team_id=team.id, staff_id=worker.id),
                ]
            )
            token = await care.create_api_token(session, "helga")
            worker_token = await care.create_api_token(session, "kasia")
            await session.commit()
        policy = {
            "name": "Nights and days",
            "tiers": [
                {"timeout_s": 120, "recipients": [{"kind": "on_call"}], "channels": ["console"]},
                {
                    "timeout_s": 300,
                    "recipients": [{"kind": "staff", "id": worker.id}],
                    "channels": ["sms"],
                },
            ],
        }
        url = f"/api/teams/{team.id}/escalation-policy"
        refused = await client.put(url, json=policy, headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 422, refused.text
        gaps = refused.json()["extra"]["gaps"]
        assert gaps == [
            "Tier 1: nobody is on call on all week",
            "Tier 2: Kasia N. cannot be reached by sms",
        ]
        # Only the team's coordinators edit its policy (care.Permission.EDIT_POLICY).
        forbidden = await client.put(
            url, json=policy, headers={"Authorization": f"Bearer {worker_token}"}
        )
        assert forbidden.status_code == 403
        # Cover the week and reach Kasia by the console: saved.
        async with sessions() as session:
            session.add_all(
                alerts.OnCallShift(
                    team_id=team.id, staff_id=nurse.id, weekday=d, starts="00:00", ends="00:00"
                )
                for d in range(1, 8)
            )
            await session.commit()
        policy["tiers"][1]["channels"] = ["console", "sms"]  # type: ignore[index]
        saved = await client.put(url, json=policy, headers={"Authorization": f"Bearer {token}"})
        assert saved.status_code == 200, saved.text
        async with sessions() as session:
            tiers = (await session.exec(select(alerts.EscalationTier))).all()
            assert [(t.position, t.channels) for t in tiers] == [
                (1, ["console"]),
                (2, ["console", "sms"]),
            ]
    await engine.dispose()
