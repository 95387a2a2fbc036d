"""The policy editor as a coordinator uses it at night: a tier that would tell nobody is
refused in words, never dropped; times to answer are in minutes; a shift that ends when it
starts is refused unless meant as 24 hours; only channels this installation has are offered."""

from __future__ import annotations

from sqlmodel import col, select

import alerts
from tests.web.conftest import Console
from tests.web.test_console_editors import problems_in, signed_in, token


async def test_the_policy_editor_refuses_in_words_and_speaks_minutes(console: Console) -> None:
    client = await signed_in(console, "gudrun")
    page = f"/console/teams/{console.world.north}/policy"
    shown = await client.get(page)
    # No e-mail, SMS or push is set up in these settings: only the console is offered.
    assert 'name="tier1_channel" value="console"' in shown.text
    for channel in ("email", "sms", "push"):
        assert f'name="tier1_channel" value="{channel}"' not in shown.text
    assert "Time to answer (minutes)" in shown.text
    csrf = await token(client, page)
    # Tier 2's people were unticked, its channel left: refused, not quietly left out.
    nobody = await client.post(
        page,
        data={
            "csrf_token": csrf,
            "name": "Night",
            "tier1_minutes": "1,5",
            "tier1_recipient": "team",
            "tier1_channel": "console",
            "tier2_minutes": "5",
            "tier2_channel": "console",
            "last_tier_repeats": "3",
            "retrigger_after_min": "30",
        },
    )
    assert nobody.status_code == 400
    assert "Tier 2 names nobody: choose who is told." in problems_in(nobody.text)
    async with console.sessions() as session:
        assert (await session.exec(select(alerts.EscalationPolicy))).all() == []
    # "one and a half" minutes, as a nurse types it, is 90 seconds.
    saved = await client.post(
        page,
        data={
            "csrf_token": csrf,
            "name": "Night",
            "tier1_minutes": "1,5",
            "tier1_recipient": "team",
            "tier1_channel": "console",
            "tier2_minutes": "5",
            "tier2_recipient": "team",
            "tier2_channel": "console",
            "tier3_minutes": "2",
            "last_tier_repeats": "3",
            "retrigger_after_min": "30",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    async with console.sessions() as session:
        tiers = (
            await session.exec(
                select(alerts.EscalationTier).order_by(col(alerts.EscalationTier.position))
            )
        ).all()
    assert [t.timeout_s for t in tiers] == [90, 300]
    again = await client.get(page)
    assert 'name="tier1_minutes" type="text" inputmode="decimal" value="1.5"' in again.text
    bad = await client.post(
        page,
        data={
            "csrf_token": csrf,
            "name": "Night",
            "tier1_minutes": "soon",
            "tier1_recipient": "team",
            "tier1_channel": "console",
            "last_tier_repeats": "3",
            "retrigger_after_min": "30",
        },
    )
    assert problems_in(bad.text) == ["Tier 1: write the time to answer in minutes (at most a day)."]


async def test_a_shift_that_ends_when_it_starts_is_refused_unless_it_is_24_hours(
    console: Console,
) -> None:
    client = await signed_in(console, "gudrun")
    team = console.world.north
    csrf = await token(client, f"/console/teams/{team}/policy")
    shift = {
        "csrf_token": csrf,
        "staff_id": str(console.world.helga),
        "weekday": "2",
        "starts": "10:00",
        "ends": "10:00",
    }
    slip = await client.post(f"/console/teams/{team}/shifts", data=shift)
    assert slip.status_code == 400
    assert problems_in(slip.text) == [
        "The shift starts and ends at 10:00: tick “24 hours” for a whole day."
    ]
    async with console.sessions() as session:
        assert (await session.exec(select(alerts.OnCallShift))).all() == []
    meant = await client.post(
        f"/console/teams/{team}/shifts", data={**shift, "whole_day": "1"}, follow_redirects=False
    )
    assert meant.status_code == 303
    async with console.sessions() as session:
        [saved] = (await session.exec(select(alerts.OnCallShift))).all()
    assert (saved.weekday, saved.starts, saved.ends) == (2, "10:00", "10:00")
