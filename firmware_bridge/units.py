"""Conversions from the units devices may report in to the contract's canonical units."""

MMHG_PER_KPA = 7.50062
KG_PER_LB = 0.45359237
M_PER_INCH = 0.0254
# 1 kg/L = 10^6 mg per 10 dL.
MG_DL_PER_KG_L = 100_000
# Glucose molar mass is 180.16 g/mol, so 1 mmol/L = 18.016 mg/dL.
MG_DL_PER_MMOL_L = 18.016
MMOL_L_PER_MOL_L = 1000


def kpa_to_mmhg(kpa: float) -> float:
    """Convert kilopascal to millimetres of mercury."""
    return kpa * MMHG_PER_KPA


def lb_to_kg(pounds: float) -> float:
    """Convert pounds to kilograms."""
    return pounds * KG_PER_LB


def inch_to_m(inches: float) -> float:
    """Convert inches to metres."""
    return inches * M_PER_INCH


def fahrenheit_to_celsius(fahrenheit: float) -> float:
    """Convert degrees Fahrenheit to degrees Celsius."""
    return (fahrenheit - 32) * 5 / 9


def mol_l_to_mmol_l(mol_l: float) -> float:
    """Convert mol/L to mmol/L."""
    return mol_l * MMOL_L_PER_MOL_L


def kg_l_to_mg_dl(kg_l: float) -> float:
    """Convert kg/L (the GATT glucose mass unit) to mg/dL."""
    return kg_l * MG_DL_PER_KG_L


def mg_dl_to_mmol_l(mg_dl: float) -> float:
    """Convert a glucose mass concentration in mg/dL to mmol/L."""
    return mg_dl / MG_DL_PER_MMOL_L
