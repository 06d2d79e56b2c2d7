"""A campaign's recipient statuses are its call's statuses and three of its own: the `Campaign`
workflow reads a call's status as its recipient's (`RecipientStatus(status.value)`)."""

from __future__ import annotations

from happ_integ.calls.models import FINAL_STATUSES, CallStatus
from happ_integ.campaigns.models import FINAL_RECIPIENT, RecipientStatus


def test_every_call_status_is_a_recipient_status_and_final_ones_stay_final() -> None:
    assert {s.value for s in CallStatus} <= {s.value for s in RecipientStatus}
    assert {s.value for s in RecipientStatus} - {s.value for s in CallStatus} == {"pending", "expired"}
    assert {RecipientStatus(s.value) for s in FINAL_STATUSES} <= FINAL_RECIPIENT
