"""Simulated homes and virtual devices, written from the public MQTT contract alone.

This is firmware as a device maker would write it from docs/mqtt.md: it imports no Vaki
package, only the standard library and paho-mqtt. ``VirtualDevice`` keeps an outbox until
the server acks, resends with backoff, publishes a retained status with a Last Will and
reconnects with jitter; ``Simulator`` runs ``SimulatedHome``s whose residents live a day
planned by the day planner. ``vaki simulate`` and ``vaki serve --demo`` drive it.
"""

from homesim.contract import EXPECTED_INTERVAL_S, KINDS, RANGES, TOPIC_PREFIX
from homesim.device import MqttVersion, VirtualDevice
from homesim.homes import SCENARIOS, SimulatedDevice, SimulatedHome
from homesim.simulator import PlannedAction, Simulator, SimulatorStats

__all__ = [
    "EXPECTED_INTERVAL_S",
    "KINDS",
    "RANGES",
    "SCENARIOS",
    "TOPIC_PREFIX",
    "MqttVersion",
    "PlannedAction",
    "SimulatedDevice",
    "SimulatedHome",
    "Simulator",
    "SimulatorStats",
    "VirtualDevice",
]
