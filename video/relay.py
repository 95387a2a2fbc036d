"""The relay: the server is the WebRTC peer of every participant and forwards their media.

Each participant has one peer connection with the server. Their offer carries one
send-and-receive pair (audio + video: their camera and microphone out, the first other
participant in) and any number of receive-only pairs for further participants, so people
joining later need no renegotiation: the server starts sending them in a free pair and says
which participant is in which pair (``mid``).

Media is forwarded still encoded (see ``video.passthrough``): every leg of a room negotiates
the same video codec where the browser offers it (VP8, else H264) and Opus for sound. A leg
that cannot (an H264-only browser in a VP8 room) gets the picture decoded and encoded again
for it alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast

import av
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from av.video.codeccontext import VideoCodecContext

from video import passthrough
from video.errors import SignallingError

log = logging.getLogger(__name__)

VIDEO_CODECS = ("video/VP8", "video/H264")
AUDIO_CODEC = "audio/opus"
# A receiver that missed the start of a picture asks again soon; one PLI upstream per this
# many seconds answers them all.
KEYFRAME_REQUEST_INTERVAL_S = 0.3
_OUTLET_DEPTH = {"audio": 25, "video": 30}
_DECODERS = {"video/vp8": "libvpx", "video/h264": "h264"}
_MEDIA_LINE = re.compile(r"^m=(audio|video) ", re.MULTILINE)


def offered_kinds(sdp: str) -> list[str]:
    """The kinds of the offer's media sections, in order."""
    return _MEDIA_LINE.findall(sdp)


def offered_video_codecs(sdp: str) -> set[str]:
    """The video codecs (``video/VP8``, ...) an offer lists."""
    found = set()
    for mime in VIDEO_CODECS:
        name = mime.split("/")[1]
        if re.search(rf"^a=rtpmap:\d+ {name}/90000", sdp, re.MULTILINE | re.IGNORECASE):
            found.add(mime)
    return found


def choose_video_codec(sdp: str, room_codec: str | None) -> str:
    """The room's codec when the offer has it, else the first of ours the offer has."""
    offered = offered_video_codecs(sdp)
    if room_codec in offered:
        return room_codec
    for mime in VIDEO_CODECS:
        if mime in offered:
            return mime
    raise SignallingError("the offer has no video codec the server speaks (VP8 or H264)")


def _preferences(kind: str, mime: str) -> list[RTCRtpCodecCapability]:
    """One codec (and its retransmission format) for a transceiver."""
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in capabilities if c.mimeType.lower() == mime.lower()]
    rtx = [c for c in capabilities if c.mimeType.lower() == f"{kind}/rtx"]
    return chosen + rtx


class MediaSource:
    """One participant's camera or microphone as it reaches the server, fanned out encoded."""

    def __init__(
        self,
        track: MediaStreamTrack,
        mime_type: str,
        ask_upstream: Callable[[], Coroutine[Any, Any, bool]],
    ) -> None:
        self.track = track
        self.kind = track.kind
        self.mime_type = mime_type
        self._ask_upstream = ask_upstream
        self._outlets: set[Outlet] = set()
        self._last_request = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.frames = 0
        self.octets = 0
        self.keyframe_requests = 0
        self._reader = asyncio.create_task(self._read(), name=f"media-source-{self.kind}")

    async def _read(self) -> None:
        """Take every encoded frame once and hand it to every outlet."""
        try:
            while True:
                packet = await self.track.recv()
                self.frames += 1
                if isinstance(packet, av.Packet):
                    data = bytes(packet)
                    self.octets += len(data)
                    keyframe = passthrough.is_keyframe(self.mime_type, data)
                else:
                    keyframe = True  # decoded: the sender encodes it again
                for outlet in list(self._outlets):
                    outlet.offer(packet, keyframe)
        except MediaStreamError:
            pass  # the participant's track ended
        finally:
            for outlet in list(self._outlets):
                outlet.detach()

    def subscribe(self, outlet: Outlet) -> None:
        """Start handing frames to ``outlet``."""
        self._outlets.add(outlet)

    def unsubscribe(self, outlet: Outlet) -> None:
        """Stop handing frames to ``outlet``."""
        self._outlets.discard(outlet)

    def ask_keyframe(self) -> None:
        """Ask the participant's browser for a keyframe, at most once per interval."""
        if self.kind != "video":
            return
        now = time.monotonic()
        if now - self._last_request < KEYFRAME_REQUEST_INTERVAL_S:
            return
        self._last_request = now
        self.keyframe_requests += 1
        task: asyncio.Task[bool] = asyncio.create_task(self._ask_upstream())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop reading."""
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class Outlet(MediaStreamTrack):
    """What one sender of a leg sends: the frames of whichever source is attached to it.

    A video outlet starts at a keyframe (earlier frames cannot be decoded), and asks for one
    when it attaches or falls behind. When the leg's codec differs from the source's, it
    decodes and the sender encodes again: the fallback, for that leg only.
    """

    def __init__(self, kind: str, leg_codec: str) -> None:
        super().__init__()
        self.kind = kind
        self.leg_codec = leg_codec
        self.source: MediaSource | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue(_OUTLET_DEPTH[kind])
        self._waiting_for_keyframe = kind == "video"
        self._decoder: VideoCodecContext | None = None
        self.frames_sent = 0

    @property
    def transcoding(self) -> bool:
        """True when this leg gets the source decoded and encoded again."""
        return self._decoder is not None

    def attach(self, source: MediaSource) -> None:
        """Send ``source`` from now on (from its next keyframe, for video)."""
        self.detach()
        self.source = source
        self._waiting_for_keyframe = self.kind == "video"
        if source.mime_type.lower() != self.leg_codec.lower():
            decoder = _DECODERS.get(source.mime_type.lower())
            if decoder is None:
                raise SignallingError(f"cannot decode {source.mime_type} for this participant")
            self._decoder = cast(VideoCodecContext, av.CodecContext.create(decoder, "r"))
        else:
            self._decoder = None
        source.subscribe(self)
        source.ask_keyframe()

    def detach(self) -> None:
        """Send nothing until another source is attached."""
        if self.source is not None:
            self.source.unsubscribe(self)
            self.source = None
        while not self._queue.empty():
            self._queue.get_nowait()

    def offer(self, packet: Any, keyframe: bool) -> None:
        """A frame from the source; dropped while waiting for a keyframe."""
        if self._waiting_for_keyframe:
            if not keyframe:
                return
            self._waiting_for_keyframe = False
        if self._queue.full():
            # The receiver's leg is slower than the source: start again at a keyframe.
            while not self._queue.empty():
                self._queue.get_nowait()
            if self.kind == "video" and self.source is not None:
                self._waiting_for_keyframe = True
                self.source.ask_keyframe()
                return
        self._queue.put_nowait(packet)

    def keyframe_requested(self) -> None:
        """The receiving browser lost the picture: pass the request to the source."""
        if self.source is not None:
            self.source.ask_keyframe()

    async def recv(self) -> Any:
        """The next frame for the sender: encoded, or decoded when this leg transcodes."""
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            packet = await self._queue.get()
            self.frames_sent += 1
            decoder = self._decoder
            if decoder is None or not isinstance(packet, av.Packet):
                return packet
            frames = await asyncio.to_thread(decoder.decode, packet)
            if frames:
                return frames[-1]

    def stop(self) -> None:
        """End the outlet (its sender stops)."""
        self.detach()
        super().stop()


@dataclass
class Pair:
    """One audio + video pair of a leg, as the participant's offer laid them out."""

    audio_mid: str
    video_mid: str
    audio: Outlet
    video: Outlet
    showing: str | None = None  # the participant whose media is sent here


@dataclass
class RelayPeer:
    """The server's peer connection with one participant, and what flows through it."""

    participant: str
    pc: RTCPeerConnection
    video_codec: str
    pairs: list[Pair] = field(default_factory=list)
    sources: dict[str, MediaSource] = field(default_factory=dict)
    receivers: dict[str, RTCRtpReceiver] = field(default_factory=dict)

    def free_pair(self) -> Pair | None:
        """A pair nobody is shown in."""
        return next((pair for pair in self.pairs if pair.showing is None), None)

    def pair_showing(self, participant: str) -> Pair | None:
        """The pair ``participant`` is shown in, if any."""
        return next((pair for pair in self.pairs if pair.showing == participant), None)

    def streams(self) -> list[dict[str, str]]:
        """Which participant is in which pair, for the participant's page."""
        return [
            {"participant": pair.showing, "audio_mid": pair.audio_mid, "video_mid": pair.video_mid}
            for pair in self.pairs
            if pair.showing is not None
        ]

    @property
    def transcoded_legs(self) -> int:
        """How many of this participant's incoming videos are decoded and encoded again."""
        return sum(1 for pair in self.pairs if pair.video.transcoding)

    async def close(self) -> None:
        """Stop the sources and outlets and close the connection."""
        for pair in self.pairs:
            pair.audio.stop()
            pair.video.stop()
        for source in self.sources.values():
            await source.close()
        await self.pc.close()


async def answer_participant(
    participant: str,
    offer_sdp: str,
    *,
    room_video_codec: str | None,
    configuration: RTCConfiguration | None,
    on_sources: Callable[[RelayPeer], None],
    forward_encoded: bool = True,
    on_failed: Callable[[RelayPeer], Awaitable[None]],
) -> tuple[RelayPeer, str]:
    """A peer connection for ``participant``'s offer and the SDP answer to send back.

    ``on_sources`` is called once the participant's camera and microphone are being received
    (so the room can show them to the others); ``on_failed`` when the connection fails.
    """
    kinds = offered_kinds(offer_sdp)
    if "video" not in kinds or "audio" not in kinds:
        raise SignallingError("the offer needs an audio and a video section")
    video_codec = choose_video_codec(offer_sdp, room_video_codec)
    # Every section on one transport: browsers bundle anyway, and aiortc's "balanced" policy
    # leaves a second video section on a transport it then stops.
    pc = RTCPeerConnection(
        RTCConfiguration(
            iceServers=configuration.iceServers if configuration else None,
            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
        )
    )
    peer = RelayPeer(participant=participant, pc=pc, video_codec=video_codec)
    outlets: list[tuple[RTCRtpTransceiver, Outlet]] = []
    # Transceivers made before the offer is applied take its sections in order, so each can
    # be held to one codec: the same on every leg of the room, so media passes through.
    for kind in kinds:
        outlet = Outlet(kind, video_codec if kind == "video" else AUDIO_CODEC)
        transceiver = pc.addTransceiver(outlet, direction="sendrecv")
        transceiver.setCodecPreferences(
            _preferences(kind, video_codec if kind == "video" else AUDIO_CODEC)
        )
        sender = transceiver.sender
        passthrough.on_keyframe_request(sender, outlet.keyframe_requested)
        outlets.append((transceiver, outlet))

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
        if forward_encoded:
            passthrough.receive_encoded(transceiver.receiver)
        if track.kind in peer.sources:
            return  # only the first pair carries the participant's own camera and sound
        mime = passthrough.negotiated_codec(transceiver) or ""
        receiver = transceiver.receiver
        peer.receivers[track.kind] = receiver
        peer.sources[track.kind] = MediaSource(
            track, mime, lambda: passthrough.request_keyframe(receiver)
        )
        if len(peer.sources) == 2:
            on_sources(peer)

    @pc.on("connectionstatechange")
    async def on_state() -> None:
        if pc.connectionState == "failed":
            await on_failed(peer)

    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as err:  # aiortc raises a variety of errors for a bad offer
        await pc.close()
        raise SignallingError(f"the offer could not be answered: {err}") from err
    audio = [(t, o) for t, o in outlets if o.kind == "audio"]
    video = [(t, o) for t, o in outlets if o.kind == "video"]
    for (audio_t, audio_o), (video_t, video_o) in zip(audio, video, strict=False):
        assert audio_t.mid is not None
        assert video_t.mid is not None
        peer.pairs.append(Pair(audio_t.mid, video_t.mid, audio_o, video_o))
    return peer, pc.localDescription.sdp
