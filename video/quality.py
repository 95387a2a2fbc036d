"""Call quality per participant: samples of round-trip time, loss, bitrate and frame rate.

The relay samples its own peer connections (``getStats`` and what it forwarded); in
peer-to-peer mode browsers report their ``getStats`` figures over signalling. Only the
summary is kept, on the consultation record; no media is ever recorded.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class QualitySample:
    """One participant's figures over one sampling interval (None: not known)."""

    rtt_ms: float | None = None
    loss_pct: float | None = None
    kbps: float | None = None
    fps: float | None = None


@dataclass
class QualityLog:
    """Samples of every participant of one call."""

    samples: dict[str, list[QualitySample]] = field(default_factory=dict)

    def add(self, participant: str, sample: QualitySample) -> None:
        """Keep one sample."""
        self.samples.setdefault(participant, []).append(sample)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per participant: mean and worst of each figure, and how many samples there were."""
        result: dict[str, dict[str, Any]] = {}
        for participant, samples in self.samples.items():
            figures: dict[str, Any] = {"samples": len(samples)}
            for name, worst in (("rtt_ms", max), ("loss_pct", max), ("kbps", min), ("fps", min)):
                values = [v for s in samples if (v := getattr(s, name)) is not None]
                if values:
                    figures[f"{name}_mean"] = round(statistics.fmean(values), 1)
                    figures[f"{name}_worst"] = round(worst(values), 1)
            result[participant] = figures
        return result


def sample_from_stats(
    stats: list[Any], *, frames: int, octets: int, seconds: float
) -> QualitySample:
    """A sample from a server peer connection's ``getStats`` and the media it forwarded.

    ``frames`` and ``octets`` are the participant's video frames and bytes that reached the
    server over ``seconds``; RTT comes from the participant's receiver reports on our video.
    """
    rtts = [
        s.roundTripTime * 1000
        for s in stats
        if s.type == "remote-inbound-rtp" and s.kind == "video" and s.roundTripTime is not None
    ]
    received = sum(s.packetsReceived for s in stats if s.type == "inbound-rtp")
    lost = sum(max(s.packetsLost, 0) for s in stats if s.type == "inbound-rtp")
    loss = 100 * lost / (received + lost) if received + lost else None
    return QualitySample(
        rtt_ms=min(rtts) if rtts else None,
        loss_pct=loss,
        kbps=octets * 8 / 1000 / seconds if seconds > 0 else None,
        fps=frames / seconds if seconds > 0 else None,
    )


def sample_from_report(report: dict[str, Any]) -> QualitySample:
    """A sample a browser reported (``{"rtt_ms": .., "loss_pct": .., "kbps": .., "fps": ..}``)."""

    def number(name: str) -> float | None:
        value = report.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if value >= 0 else None

    return QualitySample(
        rtt_ms=number("rtt_ms"), loss_pct=number("loss_pct"), kbps=number("kbps"), fps=number("fps")
    )
