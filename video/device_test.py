"""The device test: an echo peer that a tablet or console calls to check its camera,
microphone and connection before a consultation, and says in plain words what works.

The page offers audio and video as for a call; the server sends the page's own picture and
sound straight back (forwarded encoded, no transcoding) and listens to what arrives. After a
few seconds the page asks for the report.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import av

from video.errors import DeviceTestNotFoundError
from video.relay import Outlet, RelayPeer, answer_participant

ECHO_LIFETIME_S = 120.0
SILENCE_DBFS = -50.0  # quieter than this all the time: the microphone is muted or dead


class _LevelMeter(Outlet):
    """Listens to the microphone: decodes a few Opus frames and keeps the loudest level."""

    def __init__(self) -> None:
        super().__init__("audio", "audio/opus")
        self._decoder = None
        self._opus = av.CodecContext.create("libopus", "r")
        self.peak = 0
        self._seen = 0

    def offer(self, packet: av.Packet[Any], keyframe: bool) -> None:
        """Decode every fifth frame (levels, not sound quality, are wanted)."""
        self._seen += 1
        if self._seen % 5:
            return
        with contextlib.suppress(av.FFmpegError):
            for frame in self._opus.decode(packet):
                samples = array.array("h", bytes(frame.planes[0]))
                if frame.format.name not in ("s16", "s16p"):
                    continue
                self.peak = max(self.peak, max((abs(s) for s in samples), default=0))

    @property
    def loudest_dbfs(self) -> float:
        """The loudest decoded level, in dB below full scale."""
        return 20 * math.log10(self.peak / 32768) if self.peak else -120.0


@dataclass(eq=False)
class EchoTest:
    """One running device test."""

    test_id: str
    peer: RelayPeer
    started: float = field(default_factory=time.monotonic)
    meter: _LevelMeter = field(default_factory=_LevelMeter)
    connection_state: str = "new"

    def report(self) -> dict[str, Any]:
        """What works, in plain words, with the figures behind them."""
        seconds = max(time.monotonic() - self.started, 0.001)
        video = self.peer.sources.get("video")
        audio = self.peer.sources.get("audio")
        connected = self.connection_state == "connected"
        fps = (video.frames / seconds) if video else 0.0
        items = {
            "connection": _item(
                connected,
                "The connection to the care team works.",
                "The tablet could not connect for video. Check the internet connection.",
            ),
            "camera": _item(
                video is not None and video.frames > 0,
                f"The camera works: pictures arrive ({fps:.0f} a second).",
                "No picture arrives. Check that the camera is allowed and not covered.",
            ),
            "microphone": _item(
                audio is not None and audio.frames > 0 and self.meter.loudest_dbfs > SILENCE_DBFS,
                "The microphone works: we can hear you.",
                "No sound arrives. Check that the microphone is allowed and not muted, "
                "then say something.",
            ),
        }
        return {
            "test_id": self.test_id,
            "all_ok": all(item["ok"] for item in items.values()),
            **items,
            "figures": {
                "seconds": round(seconds, 1),
                "video_frames": video.frames if video else 0,
                "audio_frames": audio.frames if audio else 0,
                "loudest_dbfs": round(self.meter.loudest_dbfs, 1),
                "connection_state": self.connection_state,
            },
        }


def _item(ok: bool, works: str, fails: str) -> dict[str, Any]:
    """One line of the report."""
    return {"ok": ok, "text": works if ok else fails}


class DeviceTests:
    """The echo peers of one instance; each closes itself after a while."""

    def __init__(self) -> None:
        self.tests: dict[str, EchoTest] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, who: str, offer_sdp: str) -> tuple[str, str]:
        """Answer a device test offer: (test id, answer SDP)."""
        holder: list[EchoTest] = []

        def echo(peer: RelayPeer) -> None:
            pair = peer.pairs[0] if peer.pairs else None
            if pair is None:
                return
            pair.showing = peer.participant
            pair.audio.attach(peer.sources["audio"])
            pair.video.attach(peer.sources["video"])
            if holder:
                holder[0].meter.attach(peer.sources["audio"])

        async def failed(peer: RelayPeer) -> None:
            if holder:
                holder[0].connection_state = "failed"

        peer, answer = await answer_participant(
            who,
            offer_sdp,
            room_video_codec=None,
            configuration=None,
            on_sources=lambda peer: None,
            on_failed=failed,
        )
        test = EchoTest(uuid.uuid4().hex, peer)
        holder.append(test)

        @peer.pc.on("connectionstatechange")
        def on_state() -> None:
            test.connection_state = peer.pc.connectionState

        if len(peer.sources) == 2:
            echo(peer)
        self.tests[test.test_id] = test
        loop = asyncio.get_running_loop()
        self._timers[test.test_id] = loop.call_later(
            ECHO_LIFETIME_S, lambda: self._spawn_close(test.test_id)
        )
        return test.test_id, answer

    def report(self, test_id: str, who: str) -> dict[str, Any]:
        """The report of a running test of ``who``."""
        test = self.tests.get(test_id)
        if test is None or test.peer.participant != who:
            raise DeviceTestNotFoundError("no such device test (it ends after two minutes)")
        return test.report()

    async def finish(self, test_id: str) -> None:
        """Close one test's peer."""
        test = self.tests.pop(test_id, None)
        timer = self._timers.pop(test_id, None)
        if timer is not None:
            timer.cancel()
        if test is not None:
            test.meter.stop()
            await test.peer.close()

    def _spawn_close(self, test_id: str) -> None:
        """Close a test that ran its time."""
        task = asyncio.create_task(self.finish(test_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Close every test."""
        for test_id in list(self.tests):
            await self.finish(test_id)
