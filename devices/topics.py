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


def device_may_publish(device_id: str, topic: str) -> bool:
    """A device publishes only under its own prefix, and never as the server (ack, cmd)."""
    prefix = f"{DEVICE_PREFIX}{device_id}/"
    if not topic.startswith(prefix):
        return False
    return topic.removeprefix(prefix) not in ("ack", "cmd")


def device_may_subscribe(device_id: str, topic_filter: str) -> bool:
    """A device subscribes only to its own ``cmd`` and ``ack`` topics, without wildcards."""
    return topic_filter in (device_topic(device_id, "cmd"), device_topic(device_id, "ack"))
