"""A virtual participant: an aiortc peer with a synthetic camera and microphone.

For tests, the benchmark and trying a room without a browser. It offers the layout the relay
expects (its own audio + video, then receive-only pairs for further participants) and counts
what it receives. With ``encoded=True`` it sends pre-encoded frames in a loop and counts
received frames without decoding them (decoding only the first picture), so that hundreds
of them fit on the machine that runs the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack

from video import passthrough

WIDTH, HEIGHT, FPS = 640, 480, 30
_VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
_AUDIO_TIME_BASE = fractions.Fraction(1, 48000)


def _moving_picture(index: int) -> av.VideoFrame:
    """A 640×480 picture of diagonal stripes that move a little every frame."""
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    shift = index * 4
    rows = bytes(((x + shift) // 8 * 37) & 0xFF for x in range(WIDTH + HEIGHT))
    luma = b"".join(rows[y : y + WIDTH] for y in range(HEIGHT))
    frame.planes[0].update(luma)
    frame.planes[1].update(bytes([128]) * (WIDTH // 2 * HEIGHT // 2))
    frame.planes[2].update(bytes([100 + index % 50]) * (WIDTH // 2 * HEIGHT // 2))
    return frame


def encode_video_loop(frames: int = 60, bitrate: int = 600_000) -> list[bytes]:
    """VP8 frames of a moving picture at 30 fps, the first one a keyframe."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height = WIDTH, HEIGHT
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = fractions.Fraction(1, FPS)
    encoder.framerate = fractions.Fraction(FPS, 1)
    encoder.bit_rate = bitrate
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    encoder.gop_size = frames * 10  # one keyframe per loop: the first
    out: list[bytes] = []
    for index in range(frames):
        picture = _moving_picture(index)
        picture.pts = index
        out.extend(bytes(packet) for packet in encoder.encode(picture))
    out.extend(bytes(packet) for packet in encoder.encode(None))
    return out


def encode_audio_loop(seconds: float = 1.0) -> list[bytes]:
    """Opus frames of 20 ms of a soft tone."""
    import math

    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = 48000
    encoder.layout = "stereo"
    encoder.format = "s16"
    encoder.bit_rate = 32000
    out: list[bytes] = []
    samples = 960
    for index in range(int(seconds * 50)):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
        tone = bytearray()
        for n in range(samples):
            value = int(3000 * math.sin(2 * math.pi * 440 * (index * samples + n) / 48000))
            tone += value.to_bytes(2, "little", signed=True) * 2
        frame.planes[0].update(bytes(tone))
        frame.sample_rate = 48000
        frame.pts = index * samples
        out.extend(bytes(packet) for packet in encoder.encode(frame))
    return out


class LoopedTrack(MediaStreamTrack):
    """Sends pre-encoded frames in a loop at their real pace; a keyframe request restarts
    the loop at its keyframe (as a browser's encoder answers a PLI)."""

    def __init__(self, kind: str, frames: list[bytes]) -> None:
        super().__init__()
        self.kind = kind
        self._frames = frames
        self._index = 0
        self._count = 0
        self._ptime = 1 / FPS if kind == "video" else 0.020
        self._step = 90000 // FPS if kind == "video" else 960
        self._start: float | None = None
        self.keyframe_requests = 0
        self.sent = 0

    def restart(self) -> None:
        """Send the keyframe next."""
        self.keyframe_requests += 1
        self._index = 0

    async def recv(self) -> av.Packet[Any]:
        """The next encoded frame, on time."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._count * self._ptime - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self._frames[self._index])
        packet.pts = self._count * self._step
        packet.time_base = _VIDEO_TIME_BASE if self.kind == "video" else _AUDIO_TIME_BASE
        self._index = (self._index + 1) % len(self._frames)
        self._count += 1
        self.sent += 1
        return packet


@dataclass
class Reception:
    """What arrives in one received track."""

    kind: str
    mid: str | None
    frames: int = 0
    first_frame_at: float | None = None
    first_picture_at: float | None = None
    size: tuple[int, int] | None = None


@dataclass(eq=False)
class VirtualParticipant:
    """An aiortc peer that joins a room like a tablet or console page does."""

    pairs: int = 1
    encoded: bool = False
    video_frames: list[bytes] | None = None
    audio_frames: list[bytes] | None = None
    pc: RTCPeerConnection = field(
        default_factory=lambda: RTCPeerConnection(
            RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
    )
    received: list[Reception] = field(default_factory=list)
    camera: MediaStreamTrack | None = None
    microphone: MediaStreamTrack | None = None
    offered_at: float | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.encoded:
            self.camera = LoopedTrack("video", self.video_frames or encode_video_loop())
            self.microphone = LoopedTrack("audio", self.audio_frames or encode_audio_loop())
        else:
            self.camera, self.microphone = VideoStreamTrack(), AudioStreamTrack()
        self.pc.addTransceiver(self.microphone, direction="sendrecv")
        video = self.pc.addTransceiver(self.camera, direction="sendrecv")
        if isinstance(self.camera, LoopedTrack):
            passthrough.on_keyframe_request(video.sender, self.camera.restart)
        for _ in range(self.pairs - 1):
            self.pc.addTransceiver("audio", direction="recvonly")
            self.pc.addTransceiver("video", direction="recvonly")
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        """Count what a received track brings."""
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        reception = Reception(track.kind, transceiver.mid)
        self.received.append(reception)
        if self.encoded:
            passthrough.receive_encoded(transceiver.receiver)
        task = asyncio.create_task(self._count(track, reception))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _count(self, track: MediaStreamTrack, reception: Reception) -> None:
        """Receive until the track ends, decoding the first picture of an encoded track."""
        decoder = av.CodecContext.create("libvpx", "r")
        with contextlib.suppress(MediaStreamError):
            while True:
                item = await track.recv()
                now = time.monotonic()
                reception.frames += 1
                if reception.first_frame_at is None:
                    reception.first_frame_at = now
                if reception.first_picture_at is not None or reception.kind != "video":
                    continue
                if isinstance(item, av.Packet):
                    with contextlib.suppress(av.FFmpegError):
                        pictures = decoder.decode(item)
                        if pictures:
                            reception.size = (pictures[0].width, pictures[0].height)
                            reception.first_picture_at = now
                elif isinstance(item, av.VideoFrame):
                    reception.size = (item.width, item.height)
                    reception.first_picture_at = now

    async def offer(self) -> str:
        """The offer to send to the room (with every ICE candidate in it)."""
        self.offered_at = time.monotonic()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, answer_sdp: str) -> None:
        """Apply the room's answer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    def video_received(self) -> list[Reception]:
        """The received video tracks."""
        return [r for r in self.received if r.kind == "video"]

    def receiver_of(self, mid: str) -> RTCRtpReceiver:
        """The receiver of a media section."""
        return next(t.receiver for t in self.pc.getTransceivers() if t.mid == mid)

    async def close(self) -> None:
        """Hang up."""
        await self.pc.close()
        for task in list(self._tasks):
            task.cancel()
