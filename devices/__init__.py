"""Devices in residents' homes and the MQTT link to them.

Owns the MQTT topic contract v1 (``contract``: its event table is the one list of which
event types are alarms), ingestion (``ingest``), the device registry with provisioning and
hashed credentials, the embedded broker, and the storage of readings, events and dead
letters. ``DeviceService`` is what the web calls: tablets by key, pairing, and tablet events taken
in through the same ingestion path as MQTT. Never decides what alert an event raises.
"""

from devices.commands import send_command
from devices.contract import ALARM_EVENT_TYPES, EVENT_TYPES, UNREADABLE_EVENT, raw_message_id
from devices.embedded_broker import EmbeddedBroker, read_broker_address
from devices.errors import (
    BrokerStartError,
    DevicesError,
    InvalidError,
    MqttUnavailableError,
    NotAllowedError,
    NotFoundError,
    PairingRefusedError,
    StateConflictError,
    TooManyPairingAttemptsError,
    UnknownDeviceError,
)
from devices.ingest import (
    ALARM_LANE,
    BatchSubscriber,
    CommittedEvent,
    CommittedReading,
    IngestedBatch,
    Ingestor,
)
from devices.models import (
    EXPECTED_INTERVAL_S,
    DeadLetter,
    Device,
    DeviceKind,
    Event,
    Reading,
)
from devices.mosquitto_auth import MOSQUITTO_CONF, render_acl_file, render_password_file
from devices.mqtt import InboundMessage, MqttEndpoint, MqttLink
from devices.pairing import (
    PairingAttempt,
    PairingCode,
    TabletPairing,
    create_pairing_code,
    redeem_pairing_code,
    resident_tablets,
)
from devices.registry import (
    ProvisionedDevice,
    active_broker_logins,
    authenticate_device,
    command_targets,
    mark_alarms_handled,
    provision_device,
    reset_device_secret,
    revoke_device,
    tablet_key,
    unhandled_alarm_events,
)
from devices.service import (
    HELP_REQUEST,
    DeviceService,
    PairedTablet,
    ResidentTablets,
    TeamDevices,
)
from devices.topics import (
    ALARM_CHANNELS,
    MAIN_CHANNELS,
    SERVICE_USERNAME,
    device_topic,
    ingest_subscriptions,
)

MODELS = (Device, Reading, Event, DeadLetter, TabletPairing, PairingAttempt)

__all__ = [
    "ALARM_CHANNELS",
    "ALARM_EVENT_TYPES",
    "ALARM_LANE",
    "EVENT_TYPES",
    "EXPECTED_INTERVAL_S",
    "HELP_REQUEST",
    "MAIN_CHANNELS",
    "MODELS",
    "MOSQUITTO_CONF",
    "SERVICE_USERNAME",
    "UNREADABLE_EVENT",
    "BatchSubscriber",
    "BrokerStartError",
    "CommittedEvent",
    "CommittedReading",
    "DeadLetter",
    "Device",
    "DeviceKind",
    "DeviceService",
    "DevicesError",
    "EmbeddedBroker",
    "Event",
    "InboundMessage",
    "IngestedBatch",
    "Ingestor",
    "InvalidError",
    "MqttEndpoint",
    "MqttLink",
    "MqttUnavailableError",
    "NotAllowedError",
    "NotFoundError",
    "PairedTablet",
    "PairingAttempt",
    "PairingCode",
    "PairingRefusedError",
    "ProvisionedDevice",
    "Reading",
    "ResidentTablets",
    "StateConflictError",
    "TabletPairing",
    "TeamDevices",
    "TooManyPairingAttemptsError",
    "UnknownDeviceError",
    "active_broker_logins",
    "authenticate_device",
    "command_targets",
    "create_pairing_code",
    "device_topic",
    "ingest_subscriptions",
    "mark_alarms_handled",
    "provision_device",
    "raw_message_id",
    "read_broker_address",
    "redeem_pairing_code",
    "render_acl_file",
    "render_password_file",
    "reset_device_secret",
    "resident_tablets",
    "revoke_device",
    "send_command",
    "tablet_key",
    "unhandled_alarm_events",
]
