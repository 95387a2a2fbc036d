"""Video consultations between a resident's tablet and care staff.

Owns consultations and their records, rooms, WebRTC signalling, the aiortc peers that
relay media, the call queue and the device test. Never knows about alerts.
"""

from video.models import Consultation, ConsultationKind, ConsultationStatus

MODELS = (Consultation,)

__all__ = ["MODELS", "Consultation", "ConsultationKind", "ConsultationStatus"]
