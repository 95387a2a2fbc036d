"""The call queue: residents who asked to be called, first come first served."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from video.errors import CallTakenError
from video.models import CallRequest, CallRequestStatus


async def request_call(
    session: AsyncSession, resident_id: int, *, source: str, reason: str, now: datetime
) -> tuple[CallRequest, bool]:
    """Put a resident in the call queue; (the request, whether it is new).

    A resident already waiting keeps their place: asking again adds nothing.
    """
    waiting = select(CallRequest).where(
        CallRequest.resident_id == resident_id, CallRequest.status == CallRequestStatus.WAITING
    )
    existing = (await session.exec(waiting)).first()
    if existing is not None:
        return existing, False
    request = CallRequest(resident_id=resident_id, source=source, reason=reason, created_at=now)
    try:
        async with session.begin_nested():
            session.add(request)
    except IntegrityError:
        # Two paths asked at the same moment; the other one's request stands.
        existing = (await session.exec(waiting)).first()
        assert existing is not None
        return existing, False
    return request, True


async def take_call(session: AsyncSession, request_id: int, staff_id: int, now: datetime) -> None:
    """The first staff member to pick a request up gets it; the rest are told it is taken."""
    result = await session.exec(
        update(CallRequest)
        .where(
            col(CallRequest.id) == request_id, col(CallRequest.status) == CallRequestStatus.WAITING
        )
        .values(status=CallRequestStatus.TAKEN, taken_by=staff_id, taken_at=now)
        .returning(col(CallRequest.id))
    )
    if result.first() is None:
        raise CallTakenError(f"call request {request_id} is no longer waiting")


async def waiting_calls(session: AsyncSession, resident_ids: set[int]) -> list[CallRequest]:
    """Waiting requests of these residents, oldest first."""
    rows = await session.exec(
        select(CallRequest)
        .where(
            col(CallRequest.status) == CallRequestStatus.WAITING,
            col(CallRequest.resident_id).in_(sorted(resident_ids)),
        )
        .order_by(col(CallRequest.created_at))
    )
    return list(rows.all())


async def unanswered_calls(
    session: AsyncSession, now: datetime, waited: timedelta
) -> list[CallRequest]:
    """Requests waiting longer than ``waited`` that were not escalated yet; marks them."""
    result = await session.exec(
        update(CallRequest)
        .where(
            col(CallRequest.status) == CallRequestStatus.WAITING,
            col(CallRequest.created_at) <= now - waited,
            col(CallRequest.escalated_at).is_(None),
        )
        .values(escalated_at=now)
        .returning(col(CallRequest.id))
    )
    ids = [row[0] for row in result.all()]
    if not ids:
        return []
    rows = await session.exec(select(CallRequest).where(col(CallRequest.id).in_(ids)))
    return list(rows.all())
