"""Who is told when every tier of a policy was tried and nobody acknowledged.

The organisation's coordinators (of every organisation with a member in the alert's team)
and the fallback addresses the service is configured with (a municipality's duty phone, a
regional alarm centre's mailbox). An escalation never just ends: these people hear of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.oncall import Recipient, staff_recipient
from care import StaffRole, StaffUser, TeamMembership

# Through every way there is: a fallback that is not reached is no fallback.
FALLBACK_CHANNELS = ("console", "push", "sms", "email")


@dataclass(frozen=True)
class FallbackContact:
    """A configured fallback address: an e-mail address or an E.164 phone number."""

    address: str
    language: str = "is"

    @property
    def channel(self) -> str:
        """sms for a phone number, email for anything with an @."""
        return "email" if "@" in self.address else "sms"


def parse_fallback_contacts(value: str, language: str = "is") -> tuple[FallbackContact, ...]:
    """``"duty@town.is, +3545551234"`` → the contacts it names."""
    return tuple(
        FallbackContact(part.strip(), language) for part in value.split(",") if part.strip()
    )


async def fallback_recipients(
    session: AsyncSession, team_id: int | None, contacts: tuple[FallbackContact, ...]
) -> list[Recipient]:
    """The coordinators behind the alert's team, then the configured fallback contacts."""
    people: list[Recipient] = []
    if team_id is not None:
        organisations = (
            select(StaffUser.organisation_id)
            .join(TeamMembership, col(TeamMembership.staff_id) == col(StaffUser.id))
            .where(TeamMembership.team_id == team_id)
        )
        coordinators = (
            await session.exec(
                select(StaffUser)
                .where(
                    col(StaffUser.organisation_id).in_(organisations),
                    StaffUser.role == StaffRole.COORDINATOR,
                    col(StaffUser.is_active),
                )
                .order_by(col(StaffUser.id))
            )
        ).all()
        people.extend([await staff_recipient(session, member) for member in coordinators])
    people.extend(
        Recipient(
            "fallback",
            index,
            contact.address,
            contact.language,
            {contact.channel: [contact.address]},
        )
        for index, contact in enumerate(contacts)
    )
    return people
