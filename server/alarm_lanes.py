"""Which MQTT subscriptions each of an instance's links holds, so an instance's death never
strands an alarm.

Readings and status are split between instances by an MQTT 5 shared subscription. A shared
member's session is kept only a few seconds after it vanishes: the broker hands shares to
offline members as long as their session lives, so a long session would park 1/N of all
messages in a dead instance until it came back. Devices resend what was not acked
(docs/mqtt.md), so the messages a dead member held are not lost.

Alarm events and raw payloads (which carry Zigbee2MQTT smoke, panic and water-leak states,
and raise an unreadable-event alarm from an alarm sensor) are not shared: every instance
subscribes to all of them on the alarm lane, written apart from and never behind readings,
and the database's (device, id) uniqueness stores each once, so an alarm reaches a live
instance the moment it is published, whichever instance dies. Each instance acks it
(harmless: acks are by id).
"""

from __future__ import annotations

from devices import ALARM_CHANNELS, ALARM_LANE, MAIN_CHANNELS, ingest_subscriptions
from server.settings import Settings

Subscriptions = tuple[tuple[str, int], ...]


def lane_plan(
    settings: Settings,
    shared_group: str | None,
    main_channels: tuple[str, ...] = MAIN_CHANNELS,
) -> list[tuple[str, Subscriptions, str, int]]:
    """(lane, subscriptions, client id suffix, session expiry) of each link; ``main_channels``
    leaves readings out when ingest workers take them."""
    main_expiry = (
        settings.mqtt_shared_session_expiry_s if shared_group else settings.mqtt_session_expiry_s
    )
    return [
        ("main", ingest_subscriptions(shared_group, main_channels), "", main_expiry),
        (
            ALARM_LANE,
            ingest_subscriptions(None, ALARM_CHANNELS),
            "-alarms",
            settings.mqtt_session_expiry_s,
        ),
    ]
