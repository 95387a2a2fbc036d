"""The video service's lifespan: rooms and relay peers open with the app and all close with it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from litestar import Litestar
from litestar.datastructures import State
from litestar.exceptions import ServiceUnavailableException

import care
import video
from server.runtime import Runtime
from server.settings import Settings

VIDEO_STATE_KEY = "video"


# What the video secret is derived for, from the instance secret, when none is configured.
VIDEO_KEY_PURPOSE = "video room tokens"


def video_config(settings: Settings) -> video.VideoConfig:
    """The video service's configuration from the instance's settings.

    Without ``video_secret`` the key is a placeholder until the lifespan derives it from
    the instance secret in the database (the same for every instance and every start).
    """
    secret = settings.video_secret.encode() if settings.video_secret else secrets.token_bytes(32)
    urls = tuple(url.strip() for url in settings.video_ice_urls.split(",") if url.strip())
    return video.VideoConfig(
        secret=secret,
        mode=settings.video_media_mode,
        token_ttl=timedelta(seconds=settings.video_token_ttl_s),
        ice_urls=urls,
        turn_secret=settings.video_turn_secret,
        turn_ttl=timedelta(seconds=settings.video_turn_ttl_s),
        max_participants=settings.video_max_participants,
        quality_interval_s=settings.video_quality_interval_s,
    )


def video_service(
    settings: Settings, runtime: Runtime, clock: Callable[[], datetime]
) -> video.VideoService:
    """The instance's video service; it writes call records through the runtime's database."""
    return video.VideoService(video_config(settings), lambda: runtime.sessions, clock)


@asynccontextmanager
async def video_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Take calls while the app runs; on shutdown close every peer and write every record."""
    service: video.VideoService = app.state[VIDEO_STATE_KEY]
    runtime: Runtime = app.state.runtime
    if not runtime.settings.video_secret and runtime.sessions is not None:
        async with runtime.sessions() as session:
            service.use_secret(await care.instance_key(session, VIDEO_KEY_PURPOSE))
            await session.commit()
    await service.start()
    try:
        yield
    finally:
        await service.close()


def provide_video_service(state: State) -> video.VideoService:
    """The video service, for controllers."""
    service = state.get(VIDEO_STATE_KEY)
    if not isinstance(service, video.VideoService):
        raise ServiceUnavailableException("video calls are not running")
    return service
