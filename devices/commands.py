"""Commands to devices on their ``cmd`` topic: check-in prompts, reminders, calls, config."""

from __future__ import annotations

import json
from typing import Any

from devices.mqtt import MqttLink
from devices.topics import device_topic


async def send_command(
    link: MqttLink, device_id: str, command: dict[str, Any], *, timeout_s: float = 10.0
) -> None:
    """Publish one command (QoS 1) and wait until the broker has it.

    Raises MqttUnavailableError when the broker does not take it in time. A command may
    reach a device twice (contract v1: devices act on a command id once).
    """
    payload = json.dumps(command, separators=(",", ":"), ensure_ascii=False)
    await link.publish_confirmed(device_topic(device_id, "cmd"), payload, timeout_s=timeout_s)
