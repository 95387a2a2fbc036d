"""The service indicators as a FHIR Bundle of MeasureReports, one per section; a count
suppressed as "<5" is sent without a value, marked masked (data-absent-reason)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measurereport import MeasureReport

import care
import indicators
from interop.resources import VAKI_SYSTEM, as_json

DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
_UNITS = {"median_s": "s", "p90_s": "s", "minutes": "min", "silent_hours": "h"}
_SHARES = frozenset({"within_60s", "within_180s", "adherence", "uptime"})


def _score(name: str, value: object) -> dict[str, Any] | None:
    """A figure as a measureScore Quantity (shares in %)."""
    if value == indicators.SUPPRESSED:
        return {"extension": [{"url": DATA_ABSENT, "valueCode": "masked"}]}
    if not isinstance(value, int | float):
        return None
    if name in _SHARES:
        return {
            "value": round(float(value) * 100, 2),
            "unit": "%",
            "system": "http://unitsofmeasure.org",
            "code": "%",
        }
    unit = _UNITS.get(name)
    if unit is None:
        return {"value": value}
    return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


def measure_report_bundle(figures: indicators.Indicators) -> dict[str, Any]:
    """A collection Bundle with one summary MeasureReport per section of the indicators."""
    sections: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for section, scope, group, name, value in indicators.rows(figures):
        score = _score(name, value)
        entry: dict[str, Any] = {
            "code": {
                "coding": [{"system": f"{VAKI_SYSTEM}:indicator", "code": f"{section}.{name}"}],
                "text": f"{scope} · {group} · {name}",
            }
        }
        if score is not None:
            entry["measureScore"] = score
        sections[section].append(entry)
    period = {
        "start": care.as_utc(figures.since).isoformat(),
        "end": care.as_utc(figures.until).isoformat(),
    }
    reports = [
        MeasureReport.model_validate(
            {
                "id": f"{section.replace('_', '-')}-{uuid.uuid4().hex[:12]}",
                "status": "complete",
                "type": "summary",
                "measure": f"{VAKI_SYSTEM}:measure:{section}",
                "date": care.utcnow().isoformat(),
                "period": period,
                "group": groups,
            }
        )
        for section, groups in sections.items()
    ]
    bundle = Bundle.model_validate(
        {
            "type": "collection",
            "timestamp": care.utcnow().isoformat(),
            "entry": [
                {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": report} for report in reports
            ],
        }
    )
    return as_json(bundle)
