"""Video consultations between a resident's tablet and care staff.

Owns consultations and their records, rooms, WebRTC signalling, the aiortc peers that
relay media, the call queue and the device test. Never knows about alerts.
"""

from video.calls import request_call, take_call, unanswered_calls, waiting_calls
from video.errors import CallTakenError, VideoError
from video.models import (
    CallRequest,
    CallRequestStatus,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
)

MODELS = (Consultation, CallRequest)

__all__ = [
    "MODELS",
    "CallRequest",
    "CallRequestStatus",
    "CallTakenError",
    "Consultation",
    "ConsultationKind",
    "ConsultationStatus",
    "VideoError",
    "request_call",
    "take_call",
    "unanswered_calls",
    "waiting_calls",
]
