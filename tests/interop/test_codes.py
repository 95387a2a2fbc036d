"""Every code in the FHIR table, checked against the published value lists: LOINC's own
check digit, the IEEE 11073-10101 partition and term code of each MDC code, UCUM units."""

from __future__ import annotations

import pytest

import interop
from interop.codes import BLOOD_PRESSURE_PANEL

# Published LOINC codes and their display names (loinc.org; FHIR R4 vital-signs profiles).
PUBLISHED_LOINC = {
    "85354-9": "Blood pressure panel with all children optional",
    "8480-6": "Systolic blood pressure",
    "8462-4": "Diastolic blood pressure",
    "8478-0": "Mean blood pressure",
    "8867-4": "Heart rate",
    "2708-6": "Oxygen saturation in Arterial blood",
    "59408-5": "Oxygen saturation in Arterial blood by Pulse oximetry",
    "8310-5": "Body temperature",
    "29463-7": "Body weight",
    "8302-2": "Body height",
    "39156-5": "Body mass index (BMI) [Ratio]",
    "14743-9": "Glucose [Moles/volume] in Capillary blood by Glucometer",
    "55423-8": "Number of steps in unspecified time Pedometer",
}
# IEEE 11073-10101 reference ids with (partition, term code): code = partition * 2**16 + term.
PUBLISHED_MDC = {
    "MDC_PRESS_BLD_NONINV": (2, 18948),
    "MDC_PRESS_BLD_NONINV_SYS": (2, 18949),
    "MDC_PRESS_BLD_NONINV_DIA": (2, 18950),
    "MDC_PRESS_BLD_NONINV_MEAN": (2, 18951),
    "MDC_PULS_RATE_NON_INV": (2, 18474),
    "MDC_PULS_OXIM_PULS_RATE": (2, 18458),
    "MDC_PULS_RATE": (2, 18442),
    "MDC_PULS_OXIM_SAT_O2": (2, 19384),
    "MDC_TEMP_BODY": (2, 19292),
    "MDC_MASS_BODY_ACTUAL": (2, 57664),
    "MDC_LEN_BODY_ACTUAL": (2, 57668),
    "MDC_RATIO_MASS_BODY_LEN_SQ": (2, 57680),
    "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD": (2, 29112),
    "MDC_DEV_SPEC_PROFILE_PULS_OXIM": (8, 4100),
    "MDC_DEV_SPEC_PROFILE_BPM": (8, 4103),
    "MDC_DEV_SPEC_PROFILE_TEMP": (8, 4104),
    "MDC_DEV_SPEC_PROFILE_SCALE": (8, 4111),
    "MDC_DEV_SPEC_PROFILE_GLUCOSE": (8, 4113),
}
# The UCUM code and the vital-signs profile each LOINC code calls for.
PROFILE_UNITS = {
    "8480-6": "mm[Hg]",
    "8462-4": "mm[Hg]",
    "8478-0": "mm[Hg]",
    "8867-4": "/min",
    "2708-6": "%",
    "8310-5": "Cel",
    "29463-7": "kg",
    "8302-2": "cm",
    "39156-5": "kg/m2",
    "14743-9": "mmol/L",
    "55423-8": "{steps}",
}


def loinc_check_digit(number: str) -> int:
    """LOINC's mod-10 check digit of the part before the hyphen."""
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value // 10 + value % 10
    return (10 - total % 10) % 10


def all_measures() -> list[interop.Measure]:
    return [BLOOD_PRESSURE_PANEL, *interop.MEASURES.values()]


def test_the_check_digit_catches_a_typo() -> None:
    assert loinc_check_digit("8480") == 6
    assert loinc_check_digit("8408") != 6


@pytest.mark.parametrize("measure", all_measures(), ids=lambda m: m.loinc[0].code)
def test_every_loinc_code_is_published_with_its_name(measure: interop.Measure) -> None:
    for code in measure.loinc:
        assert code.system == interop.LOINC
        number, _, check = code.code.partition("-")
        assert int(check) == loinc_check_digit(number), code.code
        assert PUBLISHED_LOINC[code.code] == code.display


@pytest.mark.parametrize(
    "code",
    [m.mdc for m in all_measures() if m.mdc] + list(interop.DEVICE_TYPES.values()),
    ids=lambda c: c.display,
)
def test_every_mdc_code_is_its_partition_and_term(code: interop.Code) -> None:
    assert code.system == interop.MDC
    partition, term = PUBLISHED_MDC[code.display]
    assert int(code.code) == partition * 65536 + term


@pytest.mark.parametrize("key", sorted(interop.MEASURES), ids=str)
def test_every_value_has_the_unit_its_profile_requires(key: tuple[str, str]) -> None:
    measure = interop.MEASURES[key]
    assert PROFILE_UNITS[measure.loinc[0].code] == measure.ucum


def test_blood_pressure_is_the_panel_with_systolic_and_diastolic() -> None:
    assert BLOOD_PRESSURE_PANEL.loinc[0].code == "85354-9"
    assert interop.MEASURES[("blood_pressure", "systolic")].loinc[0].code == "8480-6"
    assert interop.MEASURES[("blood_pressure", "diastolic")].loinc[0].code == "8462-4"
    assert interop.MEASURES[("spo2", "spo2")].loinc[0].code == "2708-6"
