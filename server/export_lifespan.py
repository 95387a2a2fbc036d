"""The FHIR bulk export's worker: runs accepted export jobs while the app runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from litestar import Litestar

import interop
import web
from server.runtime import Runtime


def export_worker(runtime: Runtime, clock: Callable[[], datetime]) -> interop.ExportWorker:
    """The instance's export worker; it reads and writes through the runtime's database."""
    return interop.ExportWorker(interop.ExportService(lambda: runtime.sessions, clock))


@asynccontextmanager
async def export_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Run export jobs while the app runs; a job cut short is taken up again after a restart."""
    worker: interop.ExportWorker = app.state[web.EXPORT_STATE_KEY]
    await worker.start()
    try:
        yield
    finally:
        await worker.close()
