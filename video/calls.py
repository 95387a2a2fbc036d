"""The call queue: residents who asked to be called, first come first served."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from video.errors import BookingError, CallTakenError
from video.models import (
    CallRequest,
    CallRequestStatus,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
)


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


# A booked call rings on the tablet from its time for this long.
RING_FOR = timedelta(minutes=30)
# The tablet reminds the resident this long before a booked call.
REMIND_BEFORE = timedelta(minutes=10)
BOOK_AHEAD_MAX = timedelta(days=180)


async def book_consultation(
    session: AsyncSession,
    *,
    resident_id: int,
    staff_id: int,
    staff_team_ids: frozenset[int],
    scheduled_at: datetime,
    now: datetime,
) -> Consultation:
    """Book a video call with a resident at a time, for the booking staff member's team that
    looks after the resident; BookingError says in words what is wrong."""
    if scheduled_at.tzinfo is None:
        raise BookingError("give the time with its time zone")
    if scheduled_at < now - timedelta(minutes=1):
        raise BookingError("the time has already passed")
    if scheduled_at > now + BOOK_AHEAD_MAX:
        raise BookingError("book at most 180 days ahead")
    consultation = Consultation(
        resident_id=resident_id,
        team_id=await _calling_team(session, resident_id, staff_team_ids),
        kind=ConsultationKind.SCHEDULED,
        status=ConsultationStatus.BOOKED,
        scheduled_at=scheduled_at,
        created_by=staff_id,
    )
    session.add(consultation)
    await session.flush()
    return consultation


async def start_consultation(
    session: AsyncSession, *, resident_id: int, staff_id: int, staff_team_ids: frozenset[int]
) -> Consultation:
    """An on-demand call with a resident, ringing on the tablet now."""
    consultation = Consultation(
        resident_id=resident_id,
        team_id=await _calling_team(session, resident_id, staff_team_ids),
        kind=ConsultationKind.ON_DEMAND,
        status=ConsultationStatus.WAITING,
        created_by=staff_id,
    )
    session.add(consultation)
    await session.flush()
    return consultation


async def _calling_team(
    session: AsyncSession, resident_id: int, staff_team_ids: frozenset[int]
) -> int | None:
    """The staff member's team that looks after the resident (the first, when several)."""
    shared = await care.resident_team_ids(session, resident_id) & staff_team_ids
    return min(shared) if shared else None


def is_ringing(consultation: Consultation, now: datetime) -> bool:
    """A booked call rings from its time until someone joins (or for RING_FOR at most)."""
    at = consultation.scheduled_at
    return (
        consultation.status == ConsultationStatus.BOOKED
        and at is not None
        and at <= now <= at + RING_FOR
    )


async def waiting_room(
    session: AsyncSession, resident_ids: set[int], now: datetime
) -> list[Consultation]:
    """Calls of these residents that want staff now: booked calls due (or starting within the
    reminder time) and calls the resident is in, oldest first."""
    rows = await session.exec(
        select(Consultation)
        .where(
            col(Consultation.resident_id).in_(sorted(resident_ids)),
            or_(
                and_(
                    col(Consultation.status) == ConsultationStatus.BOOKED,
                    col(Consultation.scheduled_at) <= now + REMIND_BEFORE,
                    col(Consultation.scheduled_at) >= now - RING_FOR,
                ),
                col(Consultation.status).in_(
                    [ConsultationStatus.WAITING, ConsultationStatus.ACTIVE]
                ),
            ),
        )
        .order_by(col(Consultation.scheduled_at), col(Consultation.id))
    )
    return list(rows.all())
