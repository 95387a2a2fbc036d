"""Forward encoded media through aiortc without decoding or re-encoding it.

aiortc's receiver decodes every frame on a thread and its sender encodes every frame again,
which costs 15–21 % of a core per 640×480 stream; the relay only needs the encoded bytes.
aiortc has no public switch for that, so this module reaches into aiortc 1.16.0's private
attributes, and it is the only module that does:

- ``receive_encoded`` makes a receiver's track yield ``av.Packet`` (the reassembled, still
  encoded frame) instead of decoded frames; a sender given packets only packetizes them
  (public behaviour of ``RTCRtpSender``);
- ``on_keyframe_request`` tells the relay when a receiver asks a sender for a keyframe
  (PLI/FIR), which aiortc would answer by forcing its encoder, and there is none here;
- ``request_keyframe`` sends a PLI upstream, to the participant whose picture it is;
- ``negotiated_codec`` reads the codec an answer settled on.

Those private names change between aiortc releases without notice, so the import fails on
any other version instead of silently decoding again or losing keyframe requests: moving
to a new aiortc means reading its receiver and sender, adjusting here, and running
``tests/video/test_passthrough.py``.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import aiortc
import av
from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver

AIORTC_VERSION = "1.16.0"

if aiortc.__version__ != AIORTC_VERSION:  # pragma: no cover - guards an upgrade
    raise ImportError(
        f"video.passthrough is written against aiortc {AIORTC_VERSION}'s private receiver "
        f"and sender attributes; aiortc {aiortc.__version__} is installed. Check them, then "
        "update AIORTC_VERSION."
    )

_H264_KEY_NAL_TYPES = frozenset({5, 7})  # an IDR slice, or the sequence parameters before one


class _EncodedFrameQueue:
    """Stands in for a receiver's decoder queue: hands encoded frames to its track as packets.

    The receiver puts ``(codec, frame)`` here on the event loop; aiortc's decoder thread still
    starts, but only ever gets the end-of-stream ``None``, which it passes on to the track.
    """

    def __init__(self, track_queue: asyncio.Queue[Any]) -> None:
        self._track_queue = track_queue
        self._to_thread: queue.Queue[None] = queue.Queue()

    def put(self, item: tuple[Any, Any] | None) -> None:
        """From the receiver (event loop): one reassembled frame, or ``None`` at the end."""
        if item is None:
            self._to_thread.put(None)
            return
        codec, frame = item
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = Fraction(1, codec.clockRate)
        self._track_queue.put_nowait(packet)

    def get(self) -> None:
        """From aiortc's decoder thread: wait for the end of the stream."""
        return self._to_thread.get()


def receive_encoded(receiver: RTCRtpReceiver) -> None:
    """Make ``receiver.track.recv()`` return encoded ``av.Packet`` frames, never decoding.

    Call it from the peer connection's ``track`` event, before the receiver starts.
    """
    if getattr(receiver, "_RTCRtpReceiver__decoder_thread", None) is not None:
        raise RuntimeError("the receiver is already decoding: call receive_encoded earlier")
    track = receiver.track
    if track is None:
        raise RuntimeError("the receiver has no track yet")
    receiver._RTCRtpReceiver__decoder_queue = _EncodedFrameQueue(track._queue)  # type: ignore[attr-defined]


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever the remote receiver of ``sender`` asks for a keyframe."""
    force_encoder_keyframe = sender._send_keyframe

    def keyframe_requested() -> None:
        force_encoder_keyframe()  # still right when this leg transcodes
        callback()

    sender._send_keyframe = keyframe_requested  # type: ignore[method-assign]


async def request_keyframe(receiver: RTCRtpReceiver) -> bool:
    """Ask the sender of what ``receiver`` gets for a keyframe (PLI); False before media."""
    retransmission = set(getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {}))
    sources = [s.source for s in receiver.getSynchronizationSources()]
    media = [ssrc for ssrc in sources if ssrc not in retransmission]
    for ssrc in media:
        await receiver._send_rtcp_pli(ssrc)
    return bool(media)


def negotiated_codec(transceiver: RTCRtpTransceiver) -> str | None:
    """The MIME type the offer/answer settled on for ``transceiver`` (``video/VP8``), if any."""
    codecs = transceiver._codecs
    return codecs[0].mimeType if codecs else None


def is_keyframe(mime_type: str, data: bytes) -> bool:
    """True when an encoded frame can be decoded on its own (audio frames always can)."""
    name = mime_type.lower()
    if name == "video/vp8":
        # RFC 6386 §9.1: bit 0 of the frame tag is 0 for a key frame.
        return len(data) >= 3 and data[0] & 0x01 == 0
    if name == "video/h264":
        start = data.find(b"\x00\x00\x01")
        while start != -1 and start + 3 < len(data):
            if data[start + 3] & 0x1F in _H264_KEY_NAL_TYPES:
                return True
            start = data.find(b"\x00\x00\x01", start + 3)
        return False
    return not name.startswith("video/")
