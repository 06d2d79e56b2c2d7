"""Checking a campaign's recipients: what is stored, what is rejected by index, and that an error
never repeats a number."""

from __future__ import annotations

from happ_integ.calls.config import CallHandling, CallingHours
from happ_integ.campaigns.models import CampaignSettings
from happ_integ.campaigns.recipients import RecipientIn, check_recipients


def items(*rows: dict[str, object]) -> list[RecipientIn]:
    return [RecipientIn.model_validate(r) for r in rows]


def test_numbers_are_normalised_and_the_id_defaults_to_the_number() -> None:
    accepted, rejected = check_recipients(
        items({"phone_number": "099 482 95 73"}, {"phone_number": "+380994829574", "id": "lead-2"}), "UA"
    )
    assert rejected == []
    assert [(r.recipient_id, r.phone, r.index) for r in accepted] == [
        ("+380994829573", "+380994829573", 0),
        ("lead-2", "+380994829574", 1),
    ]


def test_bad_rows_are_rejected_by_index_and_the_rest_accepted_without_echoing_a_number() -> None:
    accepted, rejected = check_recipients(
        items(
            {"phone_number": "+380994829573", "id": "a"},
            {"phone_number": "+38099482957399999", "id": "b"},  # too long to be a number
            {"phone_number": "+380994829574", "id": "a"},  # repeated id: the later one goes
            {"phone_number": "+380994829573"},
            {"phone_number": "+380994829573"},  # the same number twice, no id: the later one goes
            {"phone_number": "+380994829575", "id": "x" * 300},
            {"phone_number": "+380994829576", "variables": {f"v{i}": i for i in range(101)}},
            {"phone_number": "+380994829577", "id": "ok"},
        ),
        "UA",
    )
    assert [r.recipient_id for r in accepted] == ["a", "+380994829573", "ok"]
    assert [(r.index, r.id) for r in rejected] == [(1, "b"), (2, "a"), (4, None), (5, "x" * 128), (6, None)]
    assert rejected[1].error == "this id is already in the campaign"
    assert rejected[2].error == "this number is already in the campaign"
    assert not any("38099" in r.error for r in rejected)


def test_ids_the_campaign_already_has_are_rejected() -> None:
    accepted, rejected = check_recipients(items({"phone_number": "+380994829573", "id": "a"}), "UA", {"a"})
    assert accepted == [] and rejected[0].error == "this id is already in the campaign"


def test_a_campaign_overrides_only_what_it_names() -> None:
    base = CallHandling(max_attempts=3, retry_delays_seconds=[600], concurrency_limit=4)
    settings = CampaignSettings(max_attempts=1, calling_hours=CallingHours(start="10:00", end="18:00"))
    handling = settings.handling(base)
    assert handling.max_attempts == 1
    assert handling.calling_hours is not None and handling.calling_hours.start == "10:00"
    assert handling.retry_delays_seconds == [600] and handling.concurrency_limit == 4
    assert CampaignSettings().handling(base) == base
