"""The one module that reaches into aiortc: encoded frames out of a receiver, keyframe
requests out of a sender, checked with two real aiortc peers."""

from __future__ import annotations

import asyncio

import aiortc
import av
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack, VideoStreamTrack

from video import passthrough
from video.virtual_participant import encode_video_loop


def test_pinned_to_the_aiortc_it_was_written_for() -> None:
    assert aiortc.__version__ == passthrough.AIORTC_VERSION


def test_keyframes_are_recognised() -> None:
    frames = encode_video_loop(frames=5)
    assert [passthrough.is_keyframe("video/VP8", f) for f in frames] == [True] + [False] * 4
    idr = b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x01\x65\x88"
    inter = b"\x00\x00\x00\x01\x41\x9a"
    assert passthrough.is_keyframe("video/H264", idr)
    assert not passthrough.is_keyframe("video/H264", inter)
    assert passthrough.is_keyframe("audio/opus", b"\x01")


async def test_a_receiver_yields_encoded_frames_and_keyframe_requests_reach_the_sender() -> None:
    sender_pc, receiver_pc = RTCPeerConnection(), RTCPeerConnection()
    requests: list[int] = []
    tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()

    @receiver_pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        receiver = next(t for t in receiver_pc.getTransceivers() if t.receiver.track is track)
        passthrough.receive_encoded(receiver.receiver)
        tracks.put_nowait(track)

    try:
        sender = sender_pc.addTrack(VideoStreamTrack())
        passthrough.on_keyframe_request(sender, lambda: requests.append(1))
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        transceiver = receiver_pc.getTransceivers()[0]
        assert passthrough.negotiated_codec(transceiver) == "video/VP8"

        track = await asyncio.wait_for(tracks.get(), 10)
        first = await asyncio.wait_for(track.recv(), 10)
        assert isinstance(first, av.Packet)
        assert passthrough.is_keyframe("video/VP8", bytes(first))
        second = await asyncio.wait_for(track.recv(), 10)
        assert isinstance(second, av.Packet)
        assert second.pts is not None
        assert first.pts is not None
        assert second.pts > first.pts

        with pytest.raises(RuntimeError, match="already decoding"):
            passthrough.receive_encoded(transceiver.receiver)

        assert await passthrough.request_keyframe(transceiver.receiver)
        async with asyncio.timeout(10):
            while not requests:
                await asyncio.sleep(0.02)
    finally:
        await sender_pc.close()
        await receiver_pc.close()
