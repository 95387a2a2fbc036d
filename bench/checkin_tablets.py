"""The tablets of ``vaki bench checkins`` and its baseline, each a process of its own.

One subscriber stands in for every resident's tablet and notes when each command arrives;
the baseline is a bare paho publisher pushing as many ``cmd`` messages of the same size
through the same broker to it.
"""

from __future__ import annotations

import json
import time
import uuid
from multiprocessing.queues import Queue as ProcessQueue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

import devices
from bench.ingest import Target

# Publishes the bare baseline keeps waiting for the broker at once (as the pipeline does).
_BARE_IN_FLIGHT = 500


def _client(target: Target, client_id: str, login: tuple[str, str]) -> paho.Client:
    """A paho client for the broker under test, not yet connected."""
    version = paho.MQTTv5 if target.protocol == "5" else paho.MQTTv311
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version)
    if login[0]:
        client.username_pw_set(*login)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    return client


def subscribe_as_tablets(
    target: Target,
    login: tuple[str, str],
    *,
    ready: ProcessEvent,
    stop: ProcessEvent,
    received: Synchronized[int],
    sample: ProcessQueue[bytes],
    results: ProcessQueue[list[tuple[str, str, float]]],
) -> None:
    """Every resident's tablet in one subscriber: note (device, command id, arrival), and
    hand over the first prompt as the baseline's sample."""
    arrivals: list[tuple[str, str, float]] = []

    def on_message(_client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        """One command arrived (paho's thread)."""
        now = time.time()
        try:
            command_id = str(json.loads(message.payload)["id"])
        except (ValueError, KeyError, TypeError):
            command_id = "?"
        if not arrivals:
            sample.put(bytes(message.payload))
        arrivals.append((message.topic.split("/")[3], command_id, now))
        received.value += 1

    def on_subscribe(*_args: Any) -> None:
        """The broker has the subscription: commands reach us from now on."""
        ready.set()

    client = _client(target, f"bench-tablets-{uuid.uuid4().hex[:6]}", login)
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.connect(target.host, target.port, keepalive=60)
    client.subscribe(devices.device_topic("+", "cmd"), 1)
    client.loop_start()
    stop.wait()
    client.disconnect()
    client.loop_stop()
    results.put(arrivals)


def bare_publisher(
    target: Target,
    login: tuple[str, str],
    device_ids: list[str],
    template: dict[str, Any],
    results: ProcessQueue[float],
) -> None:
    """Publish one command per device, QoS 1, as fast as the broker confirms; report the
    moment of the first publish."""
    client = _client(target, f"bench-bare-{uuid.uuid4().hex[:6]}", login)
    client.connect(target.host, target.port, keepalive=60)
    client.loop_start()
    waiting: list[paho.MQTTMessageInfo] = []
    first = time.time()
    for number, device_id in enumerate(device_ids):
        payload = json.dumps({**template, "id": f"bare-{number}"}, separators=(",", ":"))
        waiting.append(client.publish(devices.device_topic(device_id, "cmd"), payload, qos=1))
        if len(waiting) >= _BARE_IN_FLIGHT:
            waiting.pop(0).wait_for_publish(30)
    for info in waiting:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()
    results.put(first)
