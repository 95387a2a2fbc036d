"""The console's editors over HTTP with a signed-in session: check-in plans, the team's
escalation policy and on-call rota, who viewed a resident's data, and a translated sign-in."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlmodel import col, select

import alerts
import care
from tests.web.conftest import Console, hidden, set_session, sign_in


async def signed_in(console: Console, username: str, language: str = "en") -> httpx.AsyncClient:
    """The console's client with ``username``'s session; the staff member reads ``language``."""
    async with console.sessions() as session:
        staff = (
            await session.exec(select(care.StaffUser).where(care.StaffUser.username == username))
        ).one()
        staff.language = language
        await session.commit()
    client = console.client
    client.headers["Accept-Language"] = "en"
    set_session(client, (await sign_in(client, username)).cookies["vaki_session"])
    return client


async def token(client: httpx.AsyncClient, path: str) -> str:
    """The CSRF token of a console page's forms."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return hidden(page.text, "csrf_token")


async def plans_of(console: Console) -> list[alerts.CheckinPlan]:
    async with console.sessions() as session:
        rows = await session.exec(
            select(alerts.CheckinPlan).where(
                alerts.CheckinPlan.resident_id == console.world.resident
            )
        )
        return list(rows.all())


def problems_in(page: str) -> list[str]:
    """The problems listed next to a form."""
    box = re.search(r'<div class="error" role="alert"[^>]*>(.*?)</div>', page, re.S)
    assert box, "no problems shown"
    return [re.sub(r"\s+", " ", p).strip() for p in re.findall(r"<li>(.*?)</li>", box.group(1))]


async def test_a_bad_plan_shows_every_problem_and_saves_nothing_a_good_one_saves(
    console: Console,
) -> None:
    client = await signed_in(console, "helga")  # a nurse edits plans
    base = f"/console/residents/{console.world.resident}/plans"
    csrf = await token(client, f"{base}/new")
    bad = await client.post(
        base,
        data={
            "csrf_token": csrf,
            "kind": "questionnaire",
            "title": "Evening questions",
            "times": "25:00, 08:00, 08:10",
            "window_min": "30",
            "reminder_min": "40",
        },
    )
    assert bad.status_code == 400
    problems = problems_in(bad.text)
    assert "“25:00” is not a time of day; write it like 08:30." in problems
    assert "A questionnaire needs at least one question." in problems
    assert "Choose at least one weekday." in problems
    assert any("The reminder must come after the prompt" in p for p in problems)
    assert any(p.startswith("08:00 and 08:10 are closer") for p in problems)
    assert 'value="Evening questions"' in bad.text  # what was typed is kept
    assert 'value="25:00, 08:00, 08:10"' in bad.text
    assert await plans_of(console) == []

    not_numbers = await client.post(
        base, data={"csrf_token": csrf, "kind": "wellbeing", "title": "x", "window_min": "half"}
    )
    assert not_numbers.status_code == 400
    assert "Write the answer window in whole minutes." in problems_in(not_numbers.text)

    good = await client.post(
        base,
        data={
            "csrf_token": csrf,
            "kind": "questionnaire",
            "title": "Evening questions",
            "times": "09:00, 19:30",
            "weekday": ["1", "3", "5"],
            "window_min": "45",
            "reminder_min": "15",
            "question": ["pain", "sleep"],
            "own_question": "Did you go outside today?",
            "is_active": "on",
        },
        follow_redirects=False,
    )
    assert good.status_code == 303
    assert good.headers["location"].endswith("/plans?notice=plan_saved")
    [plan] = await plans_of(console)
    assert plan.times == ["09:00", "19:30"]
    assert plan.weekdays == [1, 3, 5]
    assert (plan.window_min, plan.reminder_before_close_min) == (45, 15)
    assert [q["id"] for q in plan.questions] == ["pain", "sleep", "own"]
    assert plan.questions[2] == {"id": "own", "kind": "yes_no", "text": "Did you go outside today?"}

    listed = await client.get(f"{base}?notice=plan_saved")
    assert "Evening questions" in listed.text
    assert "The plan is saved." in listed.text
    form = await client.get(f"{base}/{plan.id}")
    assert 'value="09:00, 19:30"' in form.text
    changed = await client.post(
        f"{base}/{plan.id}",
        data={
            "csrf_token": csrf,
            "kind": "wellbeing",
            "title": "Good morning",
            "times": "08:30",
            "weekday": [str(d) for d in range(1, 8)],
            "window_min": "30",
            "reminder_min": "10",
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303
    [plan] = await plans_of(console)
    assert (plan.title, plan.times, plan.is_active) == ("Good morning", ["08:30"], False)


async def test_the_plan_editor_speaks_the_staff_members_language(console: Console) -> None:
    client = await signed_in(console, "helga", "is")
    base = f"/console/residents/{console.world.resident}/plans"
    csrf = await token(client, f"{base}/new")
    bad = await client.post(
        base, data={"csrf_token": csrf, "kind": "wellbeing", "title": " ", "times": "7"}
    )
    assert bad.status_code == 400
    problems = problems_in(bad.text)
    assert "Gefðu áætluninni heiti sem íbúinn sér." in problems
    assert "„7“ er ekki tími dags; skrifaðu hann svona: 08:30." in problems


async def test_plans_are_read_only_for_other_roles_and_hidden_from_other_teams(
    console: Console,
) -> None:
    async with console.sessions() as session:
        org = await care.ensure_organisation(session, "Fjallabyggð")
        worker = await care.add_staff_user(
            session,
            username="kari",
            full_name="Kári D.",
            password="correct horse 1",
            role=care.StaffRole.HOME_CARE_WORKER,
            organisation=org,
        )
        assert worker.id is not None
        session.add(care.TeamMembership(team_id=console.world.north, staff_id=worker.id))
        await session.commit()
    client = await signed_in(console, "kari")
    base = f"/console/residents/{console.world.resident}/plans"
    listed = await client.get(base)
    assert listed.status_code == 200
    assert "New plan" not in listed.text
    assert (await client.get(f"{base}/new")).status_code == 403
    csrf = hidden(listed.text, "csrf_token")
    refused = await client.post(
        base, data={"csrf_token": csrf, "kind": "wellbeing", "title": "Hi", "times": "09:00"}
    )
    assert refused.status_code == 403
    assert await plans_of(console) == []

    other = await signed_in(console, "olafur")  # coordinator of the other team
    assert (await other.get(base)).status_code == 404


async def test_a_policy_with_a_gap_is_refused_in_words_and_a_complete_one_saves(
    console: Console,
) -> None:
    client = await signed_in(console, "gudrun")
    page = f"/console/teams/{console.world.north}/policy"
    csrf = await token(client, page)
    gap = await client.post(
        page,
        data={
            "csrf_token": csrf,
            "name": "Night and day",
            "tier1_timeout": "120",
            "tier1_recipient": "on_call",
            "tier1_channel": "console",
            "tier2_timeout": "300",
            "tier2_staff": str(console.world.helga),
            "tier2_channel": "sms",
            "last_tier_repeats": "3",
            "retrigger_after_min": "30",
        },
    )
    assert gap.status_code == 400
    problems = problems_in(gap.text)
    assert "Tier 1: nobody is on call on all week." in problems
    assert "Tier 2: Helga B. cannot be reached by text message." in problems
    assert 'value="Night and day"' in gap.text
    async with console.sessions() as session:
        assert (await session.exec(select(alerts.EscalationPolicy))).all() == []

    saved = await client.post(
        page,
        data={
            "csrf_token": csrf,
            "name": "Night and day",
            "tier1_timeout": "120",
            "tier1_recipient": "team",
            "tier1_channel": "console",
            "tier2_timeout": "300",
            "tier2_staff": str(console.world.helga),
            "tier2_channel": ["console", "email"],
            "tier3_timeout": "120",
            "last_tier_repeats": "2",
            "retrigger_after_min": "45",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    async with console.sessions() as session:
        policy = (await session.exec(select(alerts.EscalationPolicy))).one()
        tiers = (
            await session.exec(
                select(alerts.EscalationTier).order_by(col(alerts.EscalationTier.position))
            )
        ).all()
    assert (policy.team_id, policy.last_tier_repeats, policy.retrigger_after_min) == (
        console.world.north,
        2,
        45,
    )
    assert [t.recipients for t in tiers] == [
        [{"kind": "team"}],
        [{"kind": "staff", "id": console.world.helga}],
    ]
    assert tiers[1].channels == ["console", "email"]
    shown = await client.get(f"{page}?notice=policy_saved")
    assert "The escalation policy is saved." in shown.text


async def test_rota_shifts_and_overrides_are_added_and_removed_and_gaps_shown(
    console: Console,
) -> None:
    client = await signed_in(console, "gudrun")
    team = console.world.north
    page = f"/console/teams/{team}/policy"
    csrf = await token(client, page)
    assert "all week" in (await client.get(page)).text

    overnight = await client.post(
        f"/console/teams/{team}/shifts",
        data={
            "csrf_token": csrf,
            "staff_id": str(console.world.helga),
            "weekday": "1",
            "starts": "22:00",
            "ends": "08:00",
        },
        follow_redirects=False,
    )
    assert overnight.status_code == 303
    shown = await client.get(overnight.headers["location"])
    assert "The shift is on the rota." in shown.text
    assert "Monday 00:00–22:00" in shown.text
    assert "Tuesday 08:00–Monday 00:00" in shown.text  # to the end of the week
    async with console.sessions() as session:
        [shift] = (await session.exec(select(alerts.OnCallShift))).all()
    assert (shift.staff_id, shift.weekday, shift.starts, shift.ends) == (
        console.world.helga,
        1,
        "22:00",
        "08:00",
    )
    wrong = await client.post(
        f"/console/teams/{team}/shifts",
        data={
            "csrf_token": csrf,
            "staff_id": str(console.world.olafur),
            "weekday": "9",
            "starts": "7",
            "ends": "08:00",
        },
    )
    assert wrong.status_code == 400
    assert problems_in(wrong.text) == [
        "Choose who is on call.",
        "Choose the weekday the shift starts on.",
        "“7” is not a time of day; write it like 08:30.",
    ]

    now = console.clock.now
    added = await client.post(
        f"/console/teams/{team}/overrides",
        data={
            "csrf_token": csrf,
            "staff_id": str(console.world.gudrun),
            "starts_at": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
            "note": "Helga on holiday",
        },
        follow_redirects=False,
    )
    assert added.status_code == 303
    assert "Helga on holiday" in (await client.get(page)).text
    backwards = await client.post(
        f"/console/teams/{team}/overrides",
        data={
            "csrf_token": csrf,
            "staff_id": str(console.world.gudrun),
            "starts_at": "2026-12-02T08:00",
            "ends_at": "2026-12-01T08:00",
        },
    )
    assert problems_in(backwards.text) == ["The end must come after the start."]
    async with console.sessions() as session:
        [override] = (await session.exec(select(alerts.OnCallOverride))).all()

    removed = await client.post(
        f"/console/teams/{team}/overrides/{override.id}/remove",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert removed.status_code == 303
    removed = await client.post(
        f"/console/teams/{team}/shifts/{shift.id}/remove",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert removed.status_code == 303
    async with console.sessions() as session:
        assert (await session.exec(select(alerts.OnCallShift))).all() == []
        assert (await session.exec(select(alerts.OnCallOverride))).all() == []
    unsigned = await client.post(f"/console/teams/{team}/shifts", data={"weekday": "1"})
    assert unsigned.status_code == 403


async def test_only_the_teams_coordinators_edit_its_policy_and_rota(console: Console) -> None:
    team = console.world.north
    nurse = await signed_in(console, "helga")
    assert (await nurse.get(f"/console/teams/{team}/policy")).status_code == 403
    assert (await nurse.get("/console/teams", follow_redirects=False)).status_code == 403
    csrf = await token(nurse, "/console/residents")
    refused = await nurse.post(
        f"/console/teams/{team}/shifts",
        data={
            "csrf_token": csrf,
            "staff_id": str(console.world.helga),
            "weekday": "1",
            "starts": "00:00",
            "ends": "00:00",
        },
    )
    assert refused.status_code == 403
    other = await signed_in(console, "olafur")
    assert (await other.get(f"/console/teams/{team}/policy")).status_code == 404
    mine = await other.get("/console/teams", follow_redirects=False)
    assert mine.headers["location"] == f"/console/teams/{console.world.south}/policy"
    async with console.sessions() as session:
        assert (await session.exec(select(alerts.OnCallShift))).all() == []


async def test_the_access_log_page_lists_reads_and_its_own_reading_is_logged(
    console: Console,
) -> None:
    world = console.world
    nurse = await signed_in(console, "helga")
    assert (await nurse.get(f"/console/residents/{world.resident}")).status_code == 200
    assert (await nurse.get(f"/console/residents/{world.resident}/access-log")).status_code == 403

    coordinator = await signed_in(console, "gudrun")
    page = await coordinator.get(f"/console/residents/{world.resident}/access-log")
    assert page.status_code == 200
    rows = re.findall(r"<tr>\s*<td>(.*?)</tr>", page.text, re.S)
    assert any("Helga B." in r and "Looked at the resident&#39;s page" in r for r in rows)
    assert any("Fjallabyggð" in r for r in rows)
    async with console.sessions() as session:
        reads = await care.access_log_of(session, world.resident)
    assert [e.action for e in reads if e.staff_id == world.gudrun] == ["access_log.read"]

    earlier = (console.clock.now - timedelta(days=60)).date()
    empty = await coordinator.get(
        f"/console/residents/{world.resident}/access-log",
        params={"from": earlier.isoformat(), "to": (earlier + timedelta(days=1)).isoformat()},
    )
    assert "Nobody viewed the data in this period." in empty.text
    bad = await coordinator.get(
        f"/console/residents/{world.resident}/access-log", params={"from": "yesterday"}
    )
    assert "Write dates like 2026-11-23." in bad.text
    other = await signed_in(console, "olafur")
    assert (await other.get(f"/console/residents/{world.resident}/access-log")).status_code == 404


async def test_the_sign_in_page_speaks_the_browsers_language(console: Console) -> None:
    client = console.client
    swedish = await client.get("/login", headers={"Accept-Language": "de, sv-FI;q=0.8, en;q=0.5"})
    assert '<html lang="sv">' in swedish.text
    assert "Användarnamn" in swedish.text
    assert "Logga in" in swedish.text
    polish = await client.get("/login?lang=pl", headers={"Accept-Language": "en"})
    assert "Nazwa użytkownika" in polish.text
    assert 'href="/login?lang=fi&amp;next=/console/"' in polish.text
    wrong = await client.post(
        "/login",
        data={
            "form_token": hidden(polish.text, "form_token"),
            "next": "/console/",
            "lang": "pl",
            "username": "helga",
            "password": "guess",
        },
    )
    assert "Nieprawidłowa nazwa użytkownika lub hasło." in wrong.text
    unknown = await client.get("/login", headers={"Accept-Language": "de"})
    assert "Notandanafn" in unknown.text
