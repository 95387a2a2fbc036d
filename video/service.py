"""What staff and tablets do with consultations, as one service: start, book, the waiting
room, joining, inviting.

The service owns the queries, the role rule and the transaction. Calls are clinical work:
a technician may not start, book, join or see them; asking a specialist of another
organisation into a call takes a role that may invite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from video.calls import (
    book_consultation,
    is_ringing,
    start_consultation,
    take_call,
    waiting_calls,
    waiting_room,
)
from video.errors import NotFoundError, NotParticipantError
from video.models import (
    CallRequest,
    CallRequestStatus,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
)
from video.records import (
    consultation_of,
    record_invitation,
    resident_participant,
    staff_participant,
)
from video.tokens import participant_id


@dataclass(frozen=True)
class CallPage:
    """What the console's call page shows: the call, the resident, each participant's name."""

    consultation: Consultation
    resident: care.Resident
    names: dict[str, str]


async def _names(session: AsyncSession, consultation: Consultation) -> dict[str, str]:
    """What to call each possible participant: the resident, their teams' staff, invitees."""
    names: dict[str, str] = {}
    resident = await session.get(care.Resident, consultation.resident_id)
    if resident is not None:
        names[participant_id("resident", consultation.resident_id)] = resident.full_name
    teams = await care.resident_team_ids(session, consultation.resident_id)
    invited = {
        int(str(entry["who"]).split(":", 1)[1])
        for entry in consultation.participants
        if str(entry.get("who", "")).startswith("staff:")
    }
    members = select(care.TeamMembership.staff_id).where(
        col(care.TeamMembership.team_id).in_(sorted(teams))
    )
    staff = await session.exec(
        select(care.StaffUser).where(
            col(care.StaffUser.id).in_(members) | col(care.StaffUser.id).in_(sorted(invited))
        )
    )
    for person in staff.all():
        if person.id is not None:
            names[participant_id("staff", person.id)] = person.full_name or person.username
    return names


# The tablet shows booked calls this far ahead (and from half an hour ago).
UPCOMING = timedelta(days=7)


@dataclass(frozen=True)
class TabletCalls:
    """What the resident's tablet shows of calls: the resident, booked calls coming up, the
    call ringing now (and whether it answers by itself), and a waiting "please call me"."""

    resident: care.Resident
    upcoming: list[Consultation]
    ringing: Consultation | None
    auto_answer: bool
    call_requested: bool


class ConsultationService:
    """Consultations of the residents of a staff member's care teams, and of a tablet."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime] = care.utcnow,
    ) -> None:
        """Query and write through ``sessions``; ``clock`` is the time bookings are judged by."""
        self._sessions = sessions
        self._clock = clock

    async def start(self, actor: care.Actor, resident_id: int) -> Consultation:
        """An on-demand call with a resident of the caller's teams, ringing on the tablet now."""
        actor.require(care.Permission.HOLD_CALLS)
        async with self._sessions() as session, session.begin():
            await care.visible_resident(session, actor, resident_id, action="video.start")
            return await start_consultation(
                session,
                resident_id=resident_id,
                staff_id=actor.staff_id,
                staff_team_ids=actor.team_ids,
            )

    async def book(
        self, actor: care.Actor, resident_id: int, scheduled_at: datetime
    ) -> Consultation:
        """Book a call with a resident of the caller's teams (BookingError says what is wrong)."""
        actor.require(care.Permission.HOLD_CALLS)
        async with self._sessions() as session, session.begin():
            await care.visible_resident(session, actor, resident_id, action="video.book")
            return await book_consultation(
                session,
                resident_id=resident_id,
                staff_id=actor.staff_id,
                staff_team_ids=actor.team_ids,
                scheduled_at=scheduled_at,
                now=self._clock(),
            )

    async def waiting_room(self, actor: care.Actor) -> list[Consultation]:
        """Calls of the caller's teams' residents that want staff now, oldest first."""
        actor.require(care.Permission.READ_CLINICAL)
        async with self._sessions() as session:
            residents = await care.residents_of_teams(session, actor.team_ids)
            return await waiting_room(session, residents, self._clock())

    async def join_as_staff(self, actor: care.Actor, consultation_id: int) -> str:
        """The caller as a participant of the consultation (the join is logged)."""
        actor.require(care.Permission.HOLD_CALLS)
        async with self._sessions() as session, session.begin():
            consultation = await consultation_of(session, consultation_id)
            who = await staff_participant(session, consultation, actor.staff_id, actor.team_ids)
            await care.log_access(
                session,
                staff_id=actor.staff_id,
                organisation_id=actor.organisation_id,
                resident_id=consultation.resident_id,
                action="video.join",
                context=f"consultation {consultation_id}",
            )
            return who

    async def join_as_resident(self, resident_id: int, consultation_id: int) -> str:
        """The tablet's resident as a participant: only of their own consultation."""
        async with self._sessions() as session:
            consultation = await consultation_of(session, consultation_id)
        return resident_participant(consultation, resident_id)

    async def invite(self, actor: care.Actor, consultation_id: int, staff_id: int) -> Consultation:
        """Let another staff member join; a member of another organisation only by a role
        that may invite specialists."""
        actor.require(care.Permission.HOLD_CALLS)
        async with self._sessions() as session, session.begin():
            consultation = await consultation_of(session, consultation_id)
            await care.visible_resident(
                session, actor, consultation.resident_id, action="video.invite"
            )
            invited = await session.get(care.StaffUser, staff_id)
            if invited is None:
                raise care.NotFoundError(f"no staff member {staff_id}")
            if invited.organisation_id != actor.organisation_id:
                actor.require(care.Permission.INVITE_SPECIALIST)
            record_invitation(consultation, staff_id, invited_by=actor.staff_id, now=self._clock())
            session.add(consultation)
            return consultation

    async def call_page(self, actor: care.Actor, consultation_id: int) -> CallPage:
        """The call as its page shows it, for staff who take part; another's call is not found."""
        actor.require(care.Permission.HOLD_CALLS)
        async with self._sessions() as session:
            try:
                consultation = await consultation_of(session, consultation_id)
                await staff_participant(session, consultation, actor.staff_id, actor.team_ids)
            except (care.NotFoundError, NotParticipantError) as err:
                raise NotFoundError(f"no consultation {consultation_id}") from err
            resident = await session.get(care.Resident, consultation.resident_id)
            names = await _names(session, consultation)
        if resident is None:
            raise NotFoundError(f"no consultation {consultation_id}")
        return CallPage(consultation=consultation, resident=resident, names=names)

    async def waiting_calls(self, actor: care.Actor) -> list[tuple[CallRequest, care.Resident]]:
        """Residents of the caller's teams who asked to be called, oldest first."""
        actor.require(care.Permission.READ_CLINICAL)
        async with self._sessions() as session:
            residents = await care.residents_of_teams(session, actor.team_ids)
            waiting = await waiting_calls(session, residents)
            callers = {
                r.id: r
                for r in (
                    await session.exec(
                        select(care.Resident).where(
                            col(care.Resident.id).in_([w.resident_id for w in waiting])
                        )
                    )
                ).all()
            }
        return [(w, callers[w.resident_id]) for w in waiting if w.resident_id in callers]

    async def take_call(self, actor: care.Actor, request_id: int) -> int:
        """Take a resident's "please call me" (the first one to ask has it); the resident's id.

        CallTakenError when someone else took it first.
        """
        actor.require(care.Permission.ACT_ON_ALERTS)
        async with self._sessions() as session, session.begin():
            call = await session.get(CallRequest, request_id)
            mine = await care.residents_of_teams(session, actor.team_ids)
            if call is None or call.resident_id not in mine:
                raise NotFoundError(f"no call request {request_id}")
            await take_call(session, request_id, actor.staff_id, self._clock())
            return call.resident_id

    async def tablet_calls(self, resident_id: int) -> TabletCalls:
        """The calls the resident's tablet shows now; NotFoundError when the resident is gone."""
        now = self._clock()
        async with self._sessions() as session:
            resident = await session.get(care.Resident, resident_id)
            if resident is None:
                raise NotFoundError(f"no resident {resident_id}")
            upcoming = (
                await session.exec(
                    select(Consultation)
                    .where(
                        col(Consultation.resident_id) == resident_id,
                        col(Consultation.status) == ConsultationStatus.BOOKED,
                        col(Consultation.scheduled_at) >= now - timedelta(minutes=30),
                        col(Consultation.scheduled_at) <= now + UPCOMING,
                    )
                    .order_by(col(Consultation.scheduled_at))
                    .limit(5)
                )
            ).all()
            open_calls = (
                await session.exec(
                    select(Consultation)
                    .where(
                        col(Consultation.resident_id) == resident_id,
                        col(Consultation.status).in_(
                            [
                                ConsultationStatus.WAITING,
                                ConsultationStatus.ACTIVE,
                                ConsultationStatus.BOOKED,
                            ]
                        ),
                    )
                    .order_by(col(Consultation.id).desc())
                )
            ).all()
            # A booked call rings from its time; one the team opened rings at once.
            ringing = next(
                (
                    c
                    for c in open_calls
                    if c.status != ConsultationStatus.BOOKED or is_ringing(c, now)
                ),
                None,
            )
            own_team = (
                ringing is not None
                and ringing.team_id is not None
                and ringing.team_id in await care.resident_team_ids(session, resident_id)
            )
            requested = (
                await session.exec(
                    select(CallRequest.id).where(
                        col(CallRequest.resident_id) == resident_id,
                        col(CallRequest.status) == CallRequestStatus.WAITING,
                    )
                )
            ).first()
        auto = (
            ringing is not None
            and resident.auto_answer_scheduled_calls
            and ringing.kind == ConsultationKind.SCHEDULED
            and own_team
        )
        return TabletCalls(
            resident=resident,
            upcoming=[c for c in upcoming if c.scheduled_at is not None],
            ringing=ringing,
            auto_answer=bool(auto),
            call_requested=requested is not None,
        )
