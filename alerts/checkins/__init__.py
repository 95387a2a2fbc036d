"""Check-in and reminder plans turned into prompts, answers and missed check-ins.

A plan says when (local times and weekdays in the resident's own time zone). Planning
writes one prompt row per slot ahead of time; the unique (plan, slot) pair means a slot
never gets two prompts, whoever plans it and however often. Sending claims due rows with a
lease, so a sender that dies mid-way leaves the prompt to be sent again (under the same
command id, which devices act on once). Closing a window turns an unanswered prompt into a
missed one, and a prompt that never went out into "not sent": both are raised to the team
by the caller. An answer is accepted once, from whichever path brings it first.

    plans      plans as staff edit them, and their slots in the resident's time zone
    prompts    prompts as the tablet shows them, written ahead of time
    sending    due prompts and nudges claimed with a lease and marked sent
    answers    answers read, checked and recorded once; resident events as answers
    outcomes   windows closing unanswered, and the alerts every outcome calls for
    adherence  how a resident kept to their plans
    service    ``CheckinService``, the database-backed whole of the above
"""

from alerts.checkins.adherence import Adherence, adherence
from alerts.checkins.answers import (
    CALL_REQUEST_EVENT,
    RESIDENT_EVENTS,
    AnswerOutcome,
    EventAnswer,
    answered_at,
    event_answer,
)
from alerts.checkins.outcomes import (
    UNREPORTED_GRACE,
    ClosedPrompt,
    answer_alert,
    call_not_taken_alert,
    call_reason,
    closed_prompt_alert,
    settled_conditions,
    settled_note,
)
from alerts.checkins.plans import (
    BUILTIN_QUESTIONS,
    PlanSpec,
    plan_problems,
    prompt_id_of,
    save_plan,
    slots_between,
)
from alerts.checkins.prompts import OutgoingPrompt
from alerts.checkins.service import CheckinService

__all__ = [
    "BUILTIN_QUESTIONS",
    "CALL_REQUEST_EVENT",
    "RESIDENT_EVENTS",
    "UNREPORTED_GRACE",
    "Adherence",
    "AnswerOutcome",
    "CheckinService",
    "ClosedPrompt",
    "EventAnswer",
    "OutgoingPrompt",
    "PlanSpec",
    "adherence",
    "answer_alert",
    "answered_at",
    "call_not_taken_alert",
    "call_reason",
    "closed_prompt_alert",
    "event_answer",
    "plan_problems",
    "prompt_id_of",
    "save_plan",
    "settled_conditions",
    "settled_note",
    "slots_between",
]
