"""Vaki's rows as FHIR R4 resources, built and validated with ``fhir.resources``.

Each function takes the rows of one domain (through its public surface) and returns a
validated model; nothing here reads the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.careteam import CareTeam
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.relatedperson import RelatedPerson
from fhir.resources.R4B.resource import Resource

import alerts
import care
import devices
import video
from interop.codes import (
    BLOOD_PRESSURE_COMPONENTS,
    BLOOD_PRESSURE_PANEL,
    DEVICE_TYPES,
    MDC,
    MEASURES,
    OBSERVATION_CATEGORY,
    PHD_DEVICE_PROFILE,
    UCUM,
    Code,
    Measure,
    measures_of,
)

VAKI_SYSTEM = "urn:vaki"
BATTERY = Code(MDC, "67996", "MDC_ATTR_VAL_BATT_CHARGE")
FLAG_PRIORITY = "http://hl7.org/fhir/StructureDefinition/flag-priority"
LAST_SEEN = "urn:vaki:extension:device-last-seen"
_PRIORITY = {
    alerts.AlertSeverity.CRITICAL: ("PH", "High priority"),
    alerts.AlertSeverity.HIGH: ("PH", "High priority"),
    alerts.AlertSeverity.NORMAL: ("PM", "Medium priority"),
    alerts.AlertSeverity.TECHNICAL: ("PL", "Low priority"),
}
_ENCOUNTER_STATUS = {
    video.ConsultationStatus.BOOKED: "planned",
    video.ConsultationStatus.WAITING: "arrived",
    video.ConsultationStatus.ACTIVE: "in-progress",
    video.ConsultationStatus.ENDED: "finished",
    video.ConsultationStatus.CANCELLED: "cancelled",
    video.ConsultationStatus.MISSED: "cancelled",
}
# Vaki's alert kinds that are about the resident's safety rather than a measured value.
_SAFETY_KINDS = frozenset({"panic", "fall", "help_request", "smoke", "water_leak"})


def when(value: datetime | None) -> str | None:
    """An instant as FHIR writes it (always with its zone)."""
    return None if value is None else care.as_utc(value).isoformat()


def coding(code: Code) -> dict[str, str]:
    """A Coding."""
    return {"system": code.system, "code": code.code, "display": code.display}


def patient_ref(resident_id: int | None) -> dict[str, str] | None:
    """A reference to a resident."""
    return None if resident_id is None else {"reference": f"Patient/{resident_id}"}


def device_id(raw: str) -> str:
    """A device id as a FHIR id (letters, digits, '-' and '.')."""
    return "".join(c if c.isalnum() or c in "-." else "-" for c in raw)[:64]


def patient(resident: care.Resident) -> Patient:
    """A resident as a Patient."""
    body: dict[str, Any] = {
        "id": str(resident.id),
        "meta": {"lastUpdated": when(resident.created_at)},
        "identifier": [{"system": f"{VAKI_SYSTEM}:resident", "value": str(resident.id)}],
        "active": resident.is_active,
        "name": [{"use": "official", "text": resident.full_name}],
        "communication": [
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": resident.language}]},
                "preferred": True,
            }
        ],
    }
    if resident.preferred_name:
        body["name"].append({"use": "usual", "text": resident.preferred_name})
    if resident.birth_date is not None:
        body["birthDate"] = resident.birth_date.isoformat()
    if resident.phone:
        body["telecom"] = [{"system": "phone", "value": resident.phone, "use": "home"}]
    if resident.address:
        body["address"] = [{"use": "home", "text": resident.address}]
    return Patient.model_validate(body)


def device(row: devices.Device) -> Device:
    """A device as a Device, after the PHD IG's PhdDevice where it fits."""
    body: dict[str, Any] = {
        "id": device_id(row.id),
        "meta": {
            "profile": [PHD_DEVICE_PROFILE],
            "lastUpdated": when(row.last_seen_at or row.created_at),
        },
        "identifier": [{"system": f"{VAKI_SYSTEM}:device", "value": row.id}],
        "status": "inactive" if row.revoked_at is not None else "active",
        "statusReason": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/device-status-reason",
                        "code": "online" if row.online else "offline",
                    }
                ]
            }
        ],
        "type": {"coding": [{"system": f"{VAKI_SYSTEM}:device-kind", "code": row.kind}]},
        "deviceName": [{"name": row.label or row.id, "type": "user-friendly-name"}],
    }
    spec = DEVICE_TYPES.get(row.kind)
    if spec is not None:
        body["specialization"] = [{"systemType": {"coding": [coding(spec)]}}]
    if row.resident_id is not None:
        body["patient"] = patient_ref(row.resident_id)
    if row.firmware:
        body["version"] = [{"type": {"text": "firmware"}, "value": row.firmware}]
    if row.battery_pct is not None:
        body["property"] = [
            {
                "type": {"coding": [coding(BATTERY)]},
                "valueQuantity": [
                    {"value": row.battery_pct, "unit": "%", "system": UCUM, "code": "%"}
                ],
            }
        ]
    if row.last_seen_at is not None:
        body["extension"] = [{"url": LAST_SEEN, "valueDateTime": when(row.last_seen_at)}]
    return Device.model_validate(body)


def effective_time(reading: devices.Reading) -> datetime:
    """When the reading was taken: the device's clock when believable, else its arrival."""
    if reading.device_ts is not None and not reading.clock_skewed:
        return care.as_utc(reading.device_ts)
    return care.as_utc(reading.received_at)


def _code(measure: Measure) -> dict[str, Any]:
    """The Observation.code of a measure: LOINC first, then MDC."""
    codes = [*measure.loinc, *([measure.mdc] if measure.mdc else [])]
    return {"coding": [coding(c) for c in codes], "text": measure.loinc[0].display}


def _quantity(value: Any, measure: Measure) -> dict[str, Any]:
    """A UCUM Quantity."""
    number = round(float(value) * measure.factor, 4)
    return {"value": number, "unit": measure.unit, "system": UCUM, "code": measure.ucum}


def _observation_base(reading: devices.Reading, suffix: str, measure: Measure) -> dict[str, Any]:
    """What every Observation of a reading shares."""
    body: dict[str, Any] = {
        "id": f"{reading.id}-{suffix}",
        "meta": {"profile": [measure.profile], "lastUpdated": when(reading.received_at)},
        "identifier": [
            {
                "system": f"{VAKI_SYSTEM}:reading:{reading.device_id}",
                "value": f"{reading.message_id}#{suffix}",
            }
        ],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": OBSERVATION_CATEGORY,
                        "code": measure.category,
                        "display": measure.category.replace("-", " ").title(),
                    }
                ]
            }
        ],
        "code": _code(measure),
        "effectiveDateTime": when(effective_time(reading)),
        "issued": when(reading.received_at),
        "device": {"reference": f"Device/{device_id(reading.device_id)}"},
    }
    if reading.resident_id is not None:
        body["subject"] = patient_ref(reading.resident_id)
    return body


def observations(reading: devices.Reading) -> list[tuple[str, Observation]]:
    """A reading as Observations, each with its sub-key: blood pressure as the panel with
    its components, every other value (a pulse from a cuff too) as an Observation of its own."""
    found: list[tuple[str, Observation]] = []
    values = reading.values
    if reading.type == "blood_pressure" and "systolic" in values and "diastolic" in values:
        body = _observation_base(reading, "bp", BLOOD_PRESSURE_PANEL)
        body["component"] = [
            {
                "code": _code(MEASURES[("blood_pressure", key)]),
                "valueQuantity": _quantity(values[key], MEASURES[("blood_pressure", key)]),
            }
            for key in BLOOD_PRESSURE_COMPONENTS
            if values.get(key) is not None
        ]
        found.append(("bp", Observation.model_validate(body)))
    for key, measure in measures_of(reading.type):
        if values.get(key) is None:
            continue
        suffix = key.replace("_", "-")
        body = _observation_base(reading, suffix, measure)
        body["valueQuantity"] = _quantity(values[key], measure)
        found.append((suffix, Observation.model_validate(body)))
    return found


def flag(alert: alerts.Alert) -> Flag:
    """An alert as a Flag: a warning about the resident a receiving record shows, open
    while the alert is, with its severity as the flag's priority."""
    category = (
        "admin"
        if alert.severity == alerts.AlertSeverity.TECHNICAL
        else "safety"
        if alert.kind in _SAFETY_KINDS
        else "clinical"
    )
    priority, priority_display = _PRIORITY[alerts.AlertSeverity(alert.severity)]
    body: dict[str, Any] = {
        "id": str(alert.id),
        "meta": {
            "lastUpdated": when(alert.resolved_at or alert.acknowledged_at or alert.last_seen_at)
        },
        "extension": [
            {
                "url": FLAG_PRIORITY,
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/flag-priority-code",
                            "code": priority,
                            "display": priority_display,
                        }
                    ]
                },
            }
        ],
        "status": "inactive" if alert.status == alerts.AlertStatus.RESOLVED else "active",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                        "code": category,
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": f"{VAKI_SYSTEM}:alert-kind", "code": alert.kind}],
            "text": alert.title,
        },
        "period": {"start": when(alert.first_seen_at)},
    }
    if alert.resolved_at is not None:
        body["period"]["end"] = when(alert.resolved_at)
    if alert.resident_id is not None:
        body["subject"] = patient_ref(alert.resident_id)
    else:
        body["subject"] = {"reference": f"Device/{device_id(alert.device_id or 'unknown')}"}
    return Flag.model_validate(body)


def questionnaire(plan: alerts.CheckinPlan) -> Questionnaire:
    """A check-in plan's questions as a Questionnaire."""
    items: list[dict[str, Any]] = [
        {"linkId": "answer", "text": plan.title, "type": "string", "required": True}
    ]
    for question in plan.questions:
        kind = question.get("kind")
        items.append(
            {
                "linkId": str(question.get("id", "question")),
                "text": str(question.get("text") or question.get("id", "")),
                "type": "integer"
                if kind == "scale"
                else "choice"
                if kind == "choice"
                else "string",
            }
        )
    return Questionnaire.model_validate(
        {
            "id": f"checkin-{plan.id}",
            "meta": {"lastUpdated": when(plan.updated_at)},
            "url": f"{VAKI_SYSTEM}:questionnaire:checkin-{plan.id}",
            "status": "active" if plan.is_active else "retired",
            "title": plan.title,
            "subjectType": ["Patient"],
            "item": items,
        }
    )


def _answer(value: Any) -> dict[str, Any]:
    """One answer value."""
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueDecimal": value}
    return {"valueString": str(value)}


def questionnaire_response(prompt: alerts.CheckinPrompt) -> QuestionnaireResponse:
    """An answered check-in as a QuestionnaireResponse to its plan's Questionnaire."""
    items = [{"linkId": "answer", "answer": [_answer(prompt.answer or "")]}]
    items.extend(
        {"linkId": str(key), "answer": [_answer(value)]}
        for key, value in prompt.answers.items()
        if value is not None
    )
    return QuestionnaireResponse.model_validate(
        {
            "id": str(prompt.id),
            "meta": {"lastUpdated": when(prompt.answered_at or prompt.slot_at)},
            "questionnaire": f"{VAKI_SYSTEM}:questionnaire:checkin-{prompt.plan_id}",
            "status": "completed",
            "subject": patient_ref(prompt.resident_id),
            "authored": when(prompt.answered_at or prompt.slot_at),
            "source": patient_ref(prompt.resident_id),
            "item": items,
        }
    )


def encounter(consultation: video.Consultation) -> Encounter:
    """A video consultation as a virtual Encounter."""
    body: dict[str, Any] = {
        "id": str(consultation.id),
        "meta": {
            "lastUpdated": when(
                consultation.ended_at or consultation.started_at or consultation.created_at
            )
        },
        "status": _ENCOUNTER_STATUS[video.ConsultationStatus(consultation.status)],
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "VR",
            "display": "virtual",
        },
        "type": [{"text": f"Video consultation ({consultation.kind})"}],
        "subject": patient_ref(consultation.resident_id),
    }
    start = consultation.started_at or consultation.scheduled_at
    if start is not None:
        body["period"] = {"start": when(start)}
        if consultation.ended_at is not None:
            body["period"]["end"] = when(consultation.ended_at)
            minutes = (consultation.ended_at - start).total_seconds() / 60
            body["length"] = {
                "value": round(max(minutes, 0), 1),
                "unit": "min",
                "system": UCUM,
                "code": "min",
            }
    return Encounter.model_validate(body)


def care_team(team: care.CareTeam, members: list[care.StaffUser]) -> CareTeam:
    """A care team with its members (named, as Vaki has no Practitioner records to share)."""
    return CareTeam.model_validate(
        {
            "id": str(team.id),
            "meta": {"lastUpdated": when(team.created_at)},
            "status": "active",
            "name": team.name,
            "participant": [
                {"role": [{"text": member.role}], "member": {"display": member.full_name}}
                for member in members
            ]
            or None,
        }
    )


def related_person(contact: care.Contact) -> RelatedPerson:
    """A resident's contact as a RelatedPerson."""
    telecom = []
    if contact.phone:
        telecom.append({"system": "phone", "value": contact.phone})
    if contact.email:
        telecom.append({"system": "email", "value": contact.email})
    body: dict[str, Any] = {
        "id": str(contact.id),
        "active": True,
        "patient": patient_ref(contact.resident_id),
        "name": [{"text": contact.name}],
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": contact.language}]}}
        ],
    }
    if contact.relationship:
        body["relationship"] = [{"text": contact.relationship}]
    if telecom:
        body["telecom"] = telecom
    return RelatedPerson.model_validate(body)


def audit_event(
    entry: care.AccessLogEntry, staff_name: str | None, organisation: str | None
) -> AuditEvent:
    """One access-log entry as an AuditEvent."""
    who: dict[str, Any] = {"display": staff_name or "Vaki"}
    if entry.staff_id is not None:
        who["identifier"] = {"system": f"{VAKI_SYSTEM}:staff", "value": str(entry.staff_id)}
    return AuditEvent.model_validate(
        {
            "id": str(entry.id),
            "meta": {"lastUpdated": when(entry.at)},
            "type": {
                "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                "code": "rest",
                "display": "RESTful Operation",
            },
            "subtype": [{"system": f"{VAKI_SYSTEM}:access-action", "code": entry.action}],
            "action": "R",
            "recorded": when(entry.at),
            "outcome": "0",
            "agent": [
                {
                    "who": who,
                    "requestor": True,
                    **({"name": organisation} if organisation else {}),
                }
            ],
            "source": {"observer": {"display": "Vaki"}},
            "entity": [
                {
                    "what": patient_ref(entry.resident_id),
                    **({"description": entry.context} if entry.context else {}),
                }
            ],
        }
    )


def as_json(resource: Resource) -> dict[str, Any]:
    """A resource as the JSON FHIR speaks (no empty elements)."""
    body: dict[str, Any] = resource.model_dump(mode="json", exclude_none=True)
    return body
