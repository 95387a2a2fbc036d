"""Video consultations between a resident's tablet and care staff.

Owns consultations and their records, rooms, WebRTC signalling, the aiortc peers that
relay media (forwarded encoded, see ``video.passthrough``), room tokens and TURN
credentials, call quality, the call queue and the device test. ``ConsultationService`` is
what the web calls (start, book, waiting room, join, invite), with the role rules for calls.
Never knows about alerts.
"""

from video.calls import (
    REMIND_BEFORE,
    book_consultation,
    is_ringing,
    request_call,
    start_consultation,
    take_call,
    unanswered_calls,
    waiting_calls,
    waiting_room,
)
from video.device_test import DeviceTests
from video.errors import (
    BookingError,
    CallTakenError,
    DeviceTestNotFoundError,
    InvalidError,
    NotAllowedError,
    NotFoundError,
    NotParticipantError,
    RoomFullError,
    RoomTokenError,
    SignallingError,
    StateConflictError,
    VideoError,
)
from video.models import (
    CallRequest,
    CallRequestStatus,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    RoomTokenUse,
)
from video.records import (
    consultation_of,
    record_invitation,
    resident_participant,
    staff_participant,
)
from video.rooms import Member, VideoConfig, VideoService
from video.service import ConsultationService, TabletCalls
from video.tokens import participant_id, turn_credential
from video.virtual_participant import (
    VirtualParticipant,
    encode_audio_loop,
    encode_video_loop,
)

MODELS = (Consultation, CallRequest, RoomTokenUse)

__all__ = [
    "MODELS",
    "REMIND_BEFORE",
    "BookingError",
    "CallRequest",
    "CallRequestStatus",
    "CallTakenError",
    "Consultation",
    "ConsultationKind",
    "ConsultationService",
    "ConsultationStatus",
    "DeviceTestNotFoundError",
    "DeviceTests",
    "InvalidError",
    "Member",
    "NotAllowedError",
    "NotFoundError",
    "NotParticipantError",
    "RoomFullError",
    "RoomTokenError",
    "RoomTokenUse",
    "SignallingError",
    "StateConflictError",
    "TabletCalls",
    "VideoConfig",
    "VideoError",
    "VideoService",
    "VirtualParticipant",
    "book_consultation",
    "consultation_of",
    "encode_audio_loop",
    "encode_video_loop",
    "is_ringing",
    "participant_id",
    "record_invitation",
    "request_call",
    "resident_participant",
    "staff_participant",
    "start_consultation",
    "take_call",
    "turn_credential",
    "unanswered_calls",
    "waiting_calls",
    "waiting_room",
]
