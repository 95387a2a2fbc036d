"""Vaki in the health sector's standards: a FHIR R4 read API and its bulk export.

Owns the mapping from Vaki's records (residents, devices, readings, alerts, check-ins,
video consultations, care teams, contacts, the access log) to FHIR R4 resources with their
LOINC, IEEE 11073 MDC and UCUM codes, FHIR searches with paging, ``$everything``, the
CapabilityStatement, and the durable Bulk Data export jobs. Reads the other domains through
their public surfaces; never writes their rows. Knows nothing of HTTP.
"""

from interop.codes import DEVICE_TYPES, LOINC, MDC, MEASURES, UCUM, Code, Measure
from interop.errors import (
    ExportNotFoundError,
    InteropError,
    InvalidError,
    InvalidSearchError,
    NotFoundError,
    ResourceNotFoundError,
)
from interop.export import RETRY_AFTER_S, ExportService, ExportState, ExportWorker, manifest
from interop.measure import measure_report_bundle
from interop.models import ExportFile, ExportJob, ExportStatus
from interop.service import (
    FHIR_VERSION,
    FhirCaller,
    FhirService,
    capability_statement,
    readable_types,
)
from interop.sources import SOURCES

MODELS = (ExportJob, ExportFile)

__all__ = [
    "DEVICE_TYPES",
    "FHIR_VERSION",
    "LOINC",
    "MDC",
    "MEASURES",
    "MODELS",
    "RETRY_AFTER_S",
    "SOURCES",
    "UCUM",
    "Code",
    "ExportFile",
    "ExportJob",
    "ExportNotFoundError",
    "ExportService",
    "ExportState",
    "ExportStatus",
    "ExportWorker",
    "FhirCaller",
    "FhirService",
    "InteropError",
    "InvalidError",
    "InvalidSearchError",
    "Measure",
    "NotFoundError",
    "ResourceNotFoundError",
    "capability_statement",
    "manifest",
    "measure_report_bundle",
    "readable_types",
]
