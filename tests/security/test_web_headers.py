"""Every response carries the security headers, and odd input (numbers beyond 64 bits, JSON
nested a thousand deep) is refused in words, never with a server error."""

from __future__ import annotations

from tests.security.conftest import Served
from tests.web.conftest import sign_in


async def test_every_kind_of_response_carries_the_headers(served: Served) -> None:
    async with served.client() as client:
        signed_in = await sign_in(client, "helga")
        assert signed_in.status_code == 303
        responses = {
            "health": await client.get("/healthz"),
            "readiness": await client.get("/readyz"),
            "alerts": await client.get("/api/alerts/"),
            "not found": await client.get("/no/such/page"),
            "api error": await client.get("/api/alerts/999/nothing"),
            "refused": await client.post("/api/tablet/pair", json={"code": "1"}),
            "page": await client.get("/console/"),
            "static": await client.get("/static/base.css"),
        }
    for name, response in responses.items():
        headers = response.headers
        assert headers.get("x-content-type-options") == "nosniff", (name, headers)
        assert headers["x-frame-options"] == "DENY", name
        assert "frame-ancestors 'none'" in headers["content-security-policy"], name
        if headers["content-type"].startswith("application/json"):
            assert headers["cache-control"] == "no-store", name


async def test_numbers_beyond_64_bits_are_refused_in_words(served: Served) -> None:
    huge = 2**64 + 1
    async with served.client() as client:
        await sign_in(client, "helga")
        page = await client.get("/console/")
        csrf = {"X-CSRF-Token": page.text.split('name="csrf-token" content="')[1].split('"')[0]}
        answers = [
            await client.get(f"/api/residents/{huge}/access-log"),
            await client.post(f"/api/alerts/{huge}/acknowledge", headers=csrf),
            await client.post("/api/video/consultations", json={"resident_id": huge}, headers=csrf),
            # Within 64 bits but beyond the database's column: still a 400, not a 500.
            await client.post(
                "/api/video/consultations", json={"resident_id": 2**62}, headers=csrf
            ),
        ]
    for answer in answers:
        assert answer.status_code in (400, 404), (answer.request.url, answer.text)
        assert "number" in answer.text or "no resident" in answer.text, answer.text
    assert answers[0].status_code == answers[1].status_code == answers[2].status_code == 400


async def test_deeply_nested_json_on_pairing_is_refused_in_words(served: Served) -> None:
    async with served.client() as client:
        for body in (
            b"[" * 100_000 + b"]" * 100_000,
            b'{"code": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
            b'{"code": 123456789012345678901234567890}',
        ):
            answer = await client.post(
                "/api/tablet/pair", content=body, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 400, answer.text
            assert "nested too deeply" in answer.text or "too large" in answer.text
        # The same address can still pair with a code that is merely wrong.
        wrong = await client.post("/api/tablet/pair", json={"code": "0000 0001"})
        assert wrong.status_code == 422
        assert "not valid" in wrong.text
