"""The MQTT contract v1 as code: topics and the JSON that devices publish, validated without I/O.

Every ``parse_*`` function turns bytes from the broker into typed values or raises
``ContractError`` with a short reason a firmware developer can act on; nothing else escapes.
The pydantic models built here at import are both the validators and the published JSON Schemas.

    types    limits, channels, and the reading and event type tables (which events are alarms)
    models   pydantic models built from the tables: validators and JSON Schemas
    parsing  topics and payloads into ``ReadingIn``/``EventIn``/``StatusIn`` or ``ContractError``
    reasons  ``ContractError`` and the wording of every reason
"""

from devices.contract.models import event_json_schema, reading_json_schema, status_json_schema
from devices.contract.parsing import (
    parse_event,
    parse_readings,
    parse_status,
    parse_topic,
    raw_message_id,
)
from devices.contract.reasons import ContractError
from devices.contract.types import (
    ALARM_EVENT_TYPES,
    CLOCK_SKEW_LIMIT,
    EVENT_TYPES,
    MAX_BATCH,
    MAX_PAYLOAD_BYTES,
    MESSAGE_ID_PATTERN,
    READING_TYPES,
    UNREADABLE_EVENT,
    DataFieldSpec,
    EventIn,
    EventSpec,
    FieldSpec,
    ReadingIn,
    ReadingSpec,
    Rejected,
    StatusIn,
    TopicParts,
)

__all__ = [
    "ALARM_EVENT_TYPES",
    "CLOCK_SKEW_LIMIT",
    "EVENT_TYPES",
    "MAX_BATCH",
    "MAX_PAYLOAD_BYTES",
    "MESSAGE_ID_PATTERN",
    "READING_TYPES",
    "UNREADABLE_EVENT",
    "ContractError",
    "DataFieldSpec",
    "EventIn",
    "EventSpec",
    "FieldSpec",
    "ReadingIn",
    "ReadingSpec",
    "Rejected",
    "StatusIn",
    "TopicParts",
    "event_json_schema",
    "parse_event",
    "parse_readings",
    "parse_status",
    "parse_topic",
    "raw_message_id",
    "reading_json_schema",
    "status_json_schema",
]
