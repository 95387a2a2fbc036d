"""The codes a vital sign carries in FHIR: LOINC (FHIR vital-signs profiles), IEEE 11073
MDC (HL7 Personal Health Device IG) and UCUM units, in one table.

Where each code comes from is written in docs/fhir.md; tests/interop/test_codes.py checks
every LOINC check digit and every MDC code against its partition and term code.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

LOINC: Final = "http://loinc.org"
MDC: Final = "urn:iso:std:iso:11073:10101"
UCUM: Final = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_SIGNS_PROFILE: Final = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
PHD_OBSERVATION_PROFILE: Final = (
    "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdNumericObservation"
)
PHD_DEVICE_PROFILE: Final = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"


@dataclass(frozen=True)
class Code:
    """One coding: system, code, and the display its code system publishes."""

    system: str
    code: str
    display: str


@dataclass(frozen=True)
class Measure:
    """How one value of a reading is said in FHIR."""

    loinc: tuple[Code, ...]
    mdc: Code | None
    unit: str
    ucum: str
    category: str
    profile: str
    # A reading's unit times this is the UCUM unit's value (metres to centimetres).
    factor: float = 1.0


def _loinc(code: str, display: str) -> Code:
    """A LOINC coding."""
    return Code(LOINC, code, display)


def _mdc(code: int, reference_id: str) -> Code:
    """An IEEE 11073-10101 coding; its display is the reference id."""
    return Code(MDC, str(code), reference_id)


_VITALS = "vital-signs"
_BASE = "http://hl7.org/fhir/StructureDefinition/"

BLOOD_PRESSURE_PANEL: Final = Measure(
    loinc=(_loinc("85354-9", "Blood pressure panel with all children optional"),),
    mdc=_mdc(150020, "MDC_PRESS_BLD_NONINV"),
    unit="mmHg",
    ucum="mm[Hg]",
    category=_VITALS,
    profile=_BASE + "bp",
)

# (reading type, value key) -> measure. The blood-pressure values are the panel's components.
MEASURES: Final = MappingProxyType(
    {
        ("blood_pressure", "systolic"): Measure(
            (_loinc("8480-6", "Systolic blood pressure"),),
            _mdc(150021, "MDC_PRESS_BLD_NONINV_SYS"),
            "mmHg",
            "mm[Hg]",
            _VITALS,
            _BASE + "bp",
        ),
        ("blood_pressure", "diastolic"): Measure(
            (_loinc("8462-4", "Diastolic blood pressure"),),
            _mdc(150022, "MDC_PRESS_BLD_NONINV_DIA"),
            "mmHg",
            "mm[Hg]",
            _VITALS,
            _BASE + "bp",
        ),
        ("blood_pressure", "mean_arterial"): Measure(
            (_loinc("8478-0", "Mean blood pressure"),),
            _mdc(150023, "MDC_PRESS_BLD_NONINV_MEAN"),
            "mmHg",
            "mm[Hg]",
            _VITALS,
            _BASE + "bp",
        ),
        ("blood_pressure", "pulse"): Measure(
            (_loinc("8867-4", "Heart rate"),),
            _mdc(149546, "MDC_PULS_RATE_NON_INV"),
            "bpm",
            "/min",
            _VITALS,
            _BASE + "heartrate",
        ),
        ("spo2", "spo2"): Measure(
            (
                _loinc("2708-6", "Oxygen saturation in Arterial blood"),
                _loinc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
            ),
            _mdc(150456, "MDC_PULS_OXIM_SAT_O2"),
            "%",
            "%",
            _VITALS,
            _BASE + "oxygensat",
        ),
        ("spo2", "pulse"): Measure(
            (_loinc("8867-4", "Heart rate"),),
            _mdc(149530, "MDC_PULS_OXIM_PULS_RATE"),
            "bpm",
            "/min",
            _VITALS,
            _BASE + "heartrate",
        ),
        ("heart_rate", "heart_rate"): Measure(
            (_loinc("8867-4", "Heart rate"),),
            _mdc(149514, "MDC_PULS_RATE"),
            "bpm",
            "/min",
            _VITALS,
            _BASE + "heartrate",
        ),
        ("temperature", "temperature"): Measure(
            (_loinc("8310-5", "Body temperature"),),
            _mdc(150364, "MDC_TEMP_BODY"),
            "°C",
            "Cel",
            _VITALS,
            _BASE + "bodytemp",
        ),
        ("weight", "weight"): Measure(
            (_loinc("29463-7", "Body weight"),),
            _mdc(188736, "MDC_MASS_BODY_ACTUAL"),
            "kg",
            "kg",
            _VITALS,
            _BASE + "bodyweight",
        ),
        ("weight", "height"): Measure(
            (_loinc("8302-2", "Body height"),),
            _mdc(188740, "MDC_LEN_BODY_ACTUAL"),
            "cm",
            "cm",
            _VITALS,
            _BASE + "bodyheight",
            factor=100.0,
        ),
        ("weight", "bmi"): Measure(
            (_loinc("39156-5", "Body mass index (BMI) [Ratio]"),),
            _mdc(188752, "MDC_RATIO_MASS_BODY_LEN_SQ"),
            "kg/m2",
            "kg/m2",
            _VITALS,
            _BASE + "bmi",
        ),
        ("glucose", "glucose"): Measure(
            (_loinc("14743-9", "Glucose [Moles/volume] in Capillary blood by Glucometer"),),
            _mdc(160184, "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD"),
            "mmol/L",
            "mmol/L",
            "laboratory",
            PHD_OBSERVATION_PROFILE,
        ),
        ("steps", "steps"): Measure(
            (_loinc("55423-8", "Number of steps in unspecified time Pedometer"),),
            None,
            "steps",
            "{steps}",
            "activity",
            PHD_OBSERVATION_PROFILE,
        ),
    }
)

# Device kinds with an IEEE 11073-20601 device specialization (MDC_DEV_SPEC_PROFILE_*).
DEVICE_TYPES: Final = MappingProxyType(
    {
        "pulse_oximeter": _mdc(528388, "MDC_DEV_SPEC_PROFILE_PULS_OXIM"),
        "blood_pressure_monitor": _mdc(528391, "MDC_DEV_SPEC_PROFILE_BPM"),
        "thermometer": _mdc(528392, "MDC_DEV_SPEC_PROFILE_TEMP"),
        "scale": _mdc(528399, "MDC_DEV_SPEC_PROFILE_SCALE"),
        "glucose_meter": _mdc(528401, "MDC_DEV_SPEC_PROFILE_GLUCOSE"),
    }
)


def measures_of(reading_type: str) -> list[tuple[str, Measure]]:
    """The value keys of a reading type that become Observations (not the panel's parts)."""
    return [
        (key, measure)
        for (type_, key), measure in MEASURES.items()
        if type_ == reading_type
        and not (type_ == "blood_pressure" and key in BLOOD_PRESSURE_COMPONENTS)
    ]


BLOOD_PRESSURE_COMPONENTS: Final = ("systolic", "diastolic", "mean_arterial")


def reading_types_for_code(code: str) -> set[str]:
    """The reading types whose Observations carry ``code`` (LOINC or MDC; ``system|code`` ok)."""
    system, _, value = code.rpartition("|")
    found = set()
    for (type_, _key), measure in MEASURES.items():
        codes = [*measure.loinc, *([measure.mdc] if measure.mdc else [])]
        if type_ == "blood_pressure":
            codes.extend(BLOOD_PRESSURE_PANEL.loinc)
            if BLOOD_PRESSURE_PANEL.mdc is not None:
                codes.append(BLOOD_PRESSURE_PANEL.mdc)
        if any(c.code == value and (not system or c.system == system) for c in codes):
            found.add(type_)
    return found
