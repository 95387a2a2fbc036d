"""Adding and finding organisations, staff and residents."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from care.errors import DuplicateError, NotFoundError
from care.models import Organisation, OrganisationKind, Resident, StaffRole, StaffUser
from care.secrets import hash_secret


async def ensure_organisation(
    session: AsyncSession, name: str, kind: OrganisationKind = OrganisationKind.MUNICIPALITY
) -> Organisation:
    """The organisation called ``name``, created if it does not exist yet."""
    organisation = (
        await session.exec(select(Organisation).where(Organisation.name == name))
    ).first()
    if organisation is None:
        organisation = Organisation(name=name, kind=kind)
        session.add(organisation)
        await session.flush()
    return organisation


async def add_staff_user(
    session: AsyncSession,
    *,
    username: str,
    full_name: str,
    password: str,
    role: StaffRole,
    organisation: Organisation,
    language: str = "is",
    email: str | None = None,
) -> StaffUser:
    """Create a staff login; the password is stored only as an argon2 hash."""
    taken = (await session.exec(select(StaffUser).where(StaffUser.username == username))).first()
    if taken is not None:
        raise DuplicateError(f"the username {username!r} is already taken")
    assert organisation.id is not None
    user = StaffUser(
        username=username,
        full_name=full_name,
        password_hash=hash_secret(password),
        role=role,
        organisation_id=organisation.id,
        language=language,
        email=email,
    )
    session.add(user)
    await session.flush()
    return user


async def get_resident(session: AsyncSession, resident_id: int) -> Resident:
    """The resident with this id, or NotFoundError."""
    resident = await session.get(Resident, resident_id)
    if resident is None:
        raise NotFoundError(f"no resident has id {resident_id}")
    return resident
