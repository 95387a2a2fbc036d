"""Attacks on the sign-in, one-time-code and pairing limits, fired concurrently at a real
server: every try is counted before it is checked, one code opens one session, and nobody
can lock a nurse out from elsewhere."""

from __future__ import annotations

import asyncio
from collections import Counter

import pyotp

import care
import devices
from tests.security.conftest import Served
from tests.web.conftest import PASSWORD, sign_in

WRONG = "Wrong username or password."


async def test_sixteen_concurrent_guesses_check_at_most_the_limit(served: Served) -> None:
    # Sixteen browsers at one address, each with its own sign-in form.
    attackers = [served.client("203.0.113.9") for _ in range(16)]
    try:
        guesses = await asyncio.gather(
            *(sign_in(attacker, "helga", f"guess {n}") for n, attacker in enumerate(attackers))
        )
    finally:
        for attacker in attackers:
            await attacker.aclose()
    outcomes = Counter(response.status_code for response in guesses)
    checked = sum(WRONG in response.text for response in guesses)
    print(f"16 concurrent wrong passwords: {dict(outcomes)}, passwords checked: {checked}")
    assert checked <= 5
    assert outcomes[429] >= 11
    assert set(outcomes) <= {200, 429}


async def test_a_guesser_elsewhere_cannot_lock_the_nurse_out(served: Served) -> None:
    async with served.client("198.51.100.7") as attacker:
        refusals = [await sign_in(attacker, "helga", f"guess {n}") for n in range(8)]
        assert [r.status_code for r in refusals[:5]] == [200] * 5
        assert {r.status_code for r in refusals[5:]} == {429}
        first_wait = int(refusals[5].headers["retry-after"])
        # The right password does not get in from the guesser's address either.
        assert (await sign_in(attacker, "helga")).status_code == 429
        # Each further failure after a wait doubles it.
        served.clock.advance(seconds=first_wait + 1)
        assert WRONG in (await sign_in(attacker, "helga", "guess again")).text
        second = await sign_in(attacker, "helga", "and again")
        assert second.status_code == 429
        assert int(second.headers["retry-after"]) == 2 * first_wait
    # Helga at her own computer signs in at once.
    async with served.client("10.1.2.3") as helga:
        assert (await sign_in(helga, "helga")).status_code == 303


async def test_one_code_opens_one_session_however_many_ask_at_once(served: Served) -> None:
    async with served.sessions() as session:
        uri = await care.enrol_totp(session, "helga")
        await session.commit()
    code = pyotp.TOTP(pyotp.parse_uri(uri).secret).at(served.clock.now)
    clients = [served.client(f"10.0.0.{n}") for n in range(6)]
    try:
        answers = await asyncio.gather(
            *(sign_in(client, "helga", PASSWORD, code) for client in clients)
        )
    finally:
        for client in clients:
            await client.aclose()
    outcomes = Counter(response.status_code for response in answers)
    print(f"6 concurrent sign-ins with one code: {dict(outcomes)}")
    assert outcomes[303] == 1
    assert outcomes[200] == 5


async def test_a_burst_of_pairing_codes_checks_at_most_the_limit(served: Served) -> None:
    async with served.sessions() as session:
        code = await devices.create_pairing_code(
            session, served.world.resident, staff_id=served.world.gudrun
        )
        await session.commit()
    wrong = [f"{(int(code.code) + n) % 10**8:08d}" for n in range(1, 40)]
    limit = devices.pairing.MAX_WRONG_CODES
    async with served.client("192.0.2.44") as attacker:
        answers = await asyncio.gather(
            *(attacker.post("/api/tablet/pair", json={"code": guess}) for guess in wrong[:18])
        )
        outcomes = Counter(response.status_code for response in answers)
        print(f"18 concurrent wrong pairing codes: {dict(outcomes)}")
        assert set(outcomes) <= {422, 429}
        assert outcomes[422] <= limit
        # One by one, the address gets no more than the limit's codes checked in all.
        checked = outcomes[422]
        for guess in wrong[18:]:
            answer = await attacker.post("/api/tablet/pair", json={"code": guess})
            if answer.status_code == 429:
                break
            assert answer.status_code == 422
            checked += 1
        assert checked == limit
        # The right code waits too, from this address; from the resident's home it pairs.
        right = await attacker.post("/api/tablet/pair", json={"code": code.code})
        assert right.status_code == 429
    async with served.client("192.0.2.45") as home:
        paired = await home.post("/api/tablet/pair", json={"code": code.code})
        assert paired.status_code == 201, paired.text
