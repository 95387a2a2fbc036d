"""The MQTT topic contract v1: ``vaki/v1/d/{device_id}/{channel}``."""

from __future__ import annotations

import re

TOPIC_ROOT = "vaki/v1"
DEVICE_PREFIX = f"{TOPIC_ROOT}/d/"
# The server's own broker login; devices log in with their device id.
SERVICE_USERNAME = "vaki-server"
# Device ids are also MQTT usernames and client ids: keep them to safe characters.
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$")


def device_topic(device_id: str, channel: str) -> str:
    """The topic of one of a device's channels (reading, event, status, ack, cmd, raw/...)."""
    return f"{DEVICE_PREFIX}{device_id}/{channel}"


# What devices publish; the server subscribes to exactly these (never to its own ack/cmd).
# Events and raw payloads (a Zigbee2MQTT smoke, panic or water-leak state is one) come on a
# connection of their own (the alarm lane), so an alarm never waits at the broker behind
# thousands of readings.
MAIN_CHANNELS = ("reading", "status")
ALARM_CHANNELS = ("event", "raw/+")
DEVICE_CHANNELS = MAIN_CHANNELS + ALARM_CHANNELS


def ingest_subscriptions(
    shared_group: str | None = None, channels: tuple[str, ...] = DEVICE_CHANNELS
) -> tuple[tuple[str, int], ...]:
    """The server's subscriptions (QoS 1), optionally in an MQTT 5 shared group."""
    prefix = f"$share/{shared_group}/" if shared_group else ""
    return tuple((f"{prefix}{DEVICE_PREFIX}+/{channel}", 1) for channel in channels)


def device_may_publish(device_id: str, topic: str) -> bool:
    """A device publishes only its own reading, event, status and raw/{codec} topics."""
    prefix = f"{DEVICE_PREFIX}{device_id}/"
    if not topic.startswith(prefix):
        return False
    channel = topic.removeprefix(prefix)
    if channel.startswith("raw/"):
        codec = channel.removeprefix("raw/")
        return bool(codec) and "/" not in codec and "+" not in codec and "#" not in codec
    return channel in ("reading", "event", "status")


def device_may_subscribe(device_id: str, topic_filter: str) -> bool:
    """A device subscribes only to its own ``cmd`` and ``ack`` topics, without wildcards."""
    return topic_filter in (device_topic(device_id, "cmd"), device_topic(device_id, "ack"))


def reserved_client_id(client_id: str, server_client_id: str = SERVICE_USERNAME) -> bool:
    """True for the client ids of the server's own connections (``vaki-server-1``,
    ``vaki-server-1-alarms``, ...), which only the server's login may use."""
    return client_id.startswith(SERVICE_USERNAME) or client_id.startswith(server_client_id)


# The server's probes: it publishes one on each lane and must receive it back through its
# own subscriptions. "~" is never in a device id, so no device can publish or fake one.
PROBE_DEVICE_PREFIX = "~probe-"


def probe_topic(client_id: str, channel: str) -> str:
    """The topic of this server connection's probe on ``channel`` (reading or event)."""
    return f"{DEVICE_PREFIX}{PROBE_DEVICE_PREFIX}{client_id}/{channel}"


def is_probe_topic(topic: str) -> bool:
    """True for a server's probe message."""
    return topic.startswith(f"{DEVICE_PREFIX}{PROBE_DEVICE_PREFIX}")
