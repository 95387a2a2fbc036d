"""Lane probes: the server proves a lane works by sending itself a message through the broker.

An open socket says little: a broker can hold the connection while the session that
carries the subscriptions is gone. A probe is published on the lane's own channel and must
come back through the lane's subscription, so readiness means messages really flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

from devices.errors import MqttUnavailableError
from devices.mqtt import InboundMessage, MqttLink
from devices.topics import probe_topic

PROBE_TIMEOUT_S = 3.0


class LaneProbe:
    """Sends probes on one lane's channel and waits for them to come back."""

    def __init__(self, link: MqttLink, channel: str) -> None:
        """Probe ``link`` on ``channel`` (reading for the main lane, event for the alarm lane)."""
        self.link = link
        self.channel = channel
        self.topic = probe_topic(link.client_id, channel)
        self._waiting: dict[bytes, asyncio.Future[None]] = {}

    def received(self, message: InboundMessage) -> None:
        """A probe came back (on the event loop); wake whoever sent it."""
        future = self._waiting.get(message.payload)
        if future is not None and not future.done():
            future.set_result(None)

    async def check(self, timeout_s: float = PROBE_TIMEOUT_S) -> float:
        """Round trip in milliseconds; MqttUnavailableError when the probe does not return."""
        if not self.link.connected:
            raise MqttUnavailableError(f"not connected ({self.link.last_error})")
        nonce = os.urandom(12).hex().encode()
        future = asyncio.get_running_loop().create_future()
        self._waiting[nonce] = future
        started = time.perf_counter()
        try:
            self.link.publish(self.topic, nonce, qos=1)
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError as err:
            raise MqttUnavailableError(f"a probe did not come back within {timeout_s:g} s") from err
        finally:
            self._waiting.pop(nonce, None)
            if not future.done():
                future.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await future
        return (time.perf_counter() - started) * 1000
