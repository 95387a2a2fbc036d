"""The assembled app with a clock the test moves, staff in two care teams, and sign-in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from server.app import create_app
from server.db import create_engine, session_factory
from server.settings import Settings

PASSWORD = "correct horse 1"


@dataclass
class Clock:
    """Time as the app sees it; the test moves it instead of sleeping."""

    now: datetime = field(default_factory=care.utcnow)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    """Who is who in the test's world (ids)."""

    north: int
    south: int
    resident: int
    gudrun: int  # coordinator, north
    helga: int  # nurse, north
    olafur: int  # coordinator, south


@dataclass
class Console:
    """A running app, a client of it, the database and the clock."""

    client: AsyncTestClient  # type: ignore[type-arg]
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    world: World


async def make_world(sessions: async_sessionmaker[AsyncSession]) -> World:
    """An organisation, two teams, three staff and one resident of the north team."""
    async with sessions() as session:
        org = await care.ensure_organisation(session, "Fjallabyggð")
        north, south = care.CareTeam(name="North"), care.CareTeam(name="South")
        resident = care.Resident(full_name="Sigríður Jónsdóttir")
        session.add_all([north, south, resident])
        await session.flush()
        people = {}
        for username, full_name, role in (
            ("gudrun", "Guðrún A.", care.StaffRole.COORDINATOR),
            ("helga", "Helga B.", care.StaffRole.NURSE),
            ("olafur", "Ólafur C.", care.StaffRole.COORDINATOR),
        ):
            people[username] = await care.add_staff_user(
                session,
                username=username,
                full_name=full_name,
                password=PASSWORD,
                role=role,
                organisation=org,
            )
        assert north.id is not None
        assert south.id is not None
        assert resident.id is not None
        ids: dict[str, int] = {}
        for name, person in people.items():
            assert person.id is not None
            ids[name] = person.id
        session.add_all(
            [
                care.TeamMembership(team_id=north.id, staff_id=ids["gudrun"]),
                care.TeamMembership(team_id=north.id, staff_id=ids["helga"]),
                care.TeamMembership(team_id=south.id, staff_id=ids["olafur"]),
                care.ResidentTeam(resident_id=resident.id, team_id=north.id),
            ]
        )
        await session.commit()
    return World(
        north=north.id,
        south=south.id,
        resident=resident.id,
        gudrun=ids["gudrun"],
        helga=ids["helga"],
        olafur=ids["olafur"],
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def console(settings: Settings, database_url: str, clock: Clock) -> AsyncIterator[Console]:
    """The whole app on SQLite and on PostgreSQL, with the demo-free test world."""
    settings.database_url = database_url
    app = create_app(settings, clock=clock)
    engine = create_engine(database_url)
    try:
        async with AsyncTestClient(app=app) as client:
            sessions = session_factory(engine)
            world = await make_world(sessions)
            yield Console(client=client, sessions=sessions, clock=clock, world=world)
    finally:
        await engine.dispose()


def hidden(page: str, name: str) -> str:
    """The value of a hidden form field in an HTML page."""
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} in the page"
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, code: str = ""
) -> httpx.Response:
    """Open the sign-in page and submit it, as a browser does."""
    form = await client.get("/login")
    assert form.status_code == 200, form.text
    return await client.post(
        "/login",
        data={
            "form_token": hidden(form.text, "form_token"),
            "next": "/console/",
            "username": username,
            "password": password,
            "code": code,
        },
        follow_redirects=False,
    )


def set_session(client: httpx.AsyncClient, value: str, name: str = "vaki_session") -> None:
    """Put a session cookie in the client's jar where the app's own would go (replacing it)."""
    client.cookies.set(name, value, domain="testserver.local", path="/")
