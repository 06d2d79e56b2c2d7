"""A campaign checked before it is created: what would happen to each recipient, nothing stored.

    accepted, rejected = check_recipients(items, handling.default_region)
    answer = preflight(
        items, accepted, rejected,
        hours=handling.calling_hours, now=now, start_at=None,
        suppressed={"+380994829573"}, required_variables=["name"],
        average_call_seconds=180, concurrency=3,
    )
    answer.recipients[0].first_dial_at, answer.counts.suppressed, answer.projected_end_at

Pure: the caller reads the do-not-call list (`SuppressionStore.suppressed_among`), the numbers'
recent attempts (`ContactAttempts.states_of`), the integration's config and its calls' average
duration, and passes them in. Numbers are only ever shown masked.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from pydantic import BaseModel, Field

from happ_integ.calls.clock import ZonesUsed, callee_zones, next_window_start_in
from happ_integ.calls.config import CallingHours
from happ_integ.calls.contact_policy import DAY, ContactPolicy, NumberAttempts, decide_attempt
from happ_integ.calls.phones import mask_phone
from happ_integ.campaigns.recipients import Recipient, RecipientIn, Rejected

# The length of a call assumed when the integration has no completed call to average.
DEFAULT_CALL_SECONDS = 180.0


class PreflightRecipient(BaseModel):
    index: int = Field(description="0-based, in the request")
    id: str | None = Field(default=None, description="the id the recipient would get (default: its number)")
    phone_number: str | None = Field(default=None, description="masked; null when it is not a valid number")
    valid: bool
    error: str | None = Field(default=None, description="why it would be rejected, as creating answers")
    region: str | None = Field(default=None, description="the number's region code, e.g. UA")
    timezones: list[str] = Field(default_factory=list, description="the zones its calling window is read in")
    ambiguous_timezone: bool = Field(
        default=False, description="more than one zone: the window is the overlap of all of them"
    )
    suppressed: bool = Field(
        default=False, description="on the do-not-call list (global or this integration's)"
    )
    capped: bool = Field(
        default=False,
        description="a contact_policy cap holds it back at its first dial: its number's recent "
        "attempts, or the recipients before it in this list with the same number",
    )
    capped_reason: str | None = Field(default=None, description="which cap, and why")
    missing_variables: list[str] = Field(
        default_factory=list,
        description="the integration's `required_variables` this recipient's `variables` lack; only the "
        "campaign's variables are counted (the CRM lookup at dial time is not run)",
    )
    first_dial_at: datetime | None = Field(
        default=None,
        description="the first moment it could be dialled (calling window, start_at and the caps; "
        "an estimate for a number that earlier recipients of the list share); null when "
        "invalid, suppressed, or no window opens within the search",
    )


class PreflightCounts(BaseModel):
    total: int
    valid: int
    invalid: int
    suppressed: int
    capped: int
    ambiguous_timezone: int
    missing_variables: int = Field(description="recipients missing at least one required variable")


class Preflight(BaseModel):
    recipients: list[PreflightRecipient]
    counts: PreflightCounts
    projected_end_at: datetime | None = Field(
        default=None,
        description="when the last call would end: from the earliest first dial, every valid and "
        "unsuppressed recipient's call taking the average length of the integration's recent calls, "
        "max_concurrency at once; gaps outside the calling hours are ignored",
    )


def preflight(
    items: list[RecipientIn],
    accepted: list[Recipient],
    rejected: list[Rejected],
    *,
    hours: CallingHours | None,
    now: datetime,
    start_at: datetime | None,
    suppressed: set[str],
    required_variables: Iterable[str],
    average_call_seconds: float,
    concurrency: int,
    contact_policy: ContactPolicy | None = None,
    attempts: Mapping[str, NumberAttempts] | None = None,
) -> Preflight:
    """Each of `items` (checked by `check_recipients` into `accepted` and `rejected`), in order.
    `hours`: the calling hours in force (the campaign's, else the integration's; None: any time);
    `suppressed`: the E.164 numbers among them on the do-not-call list; `contact_policy` and
    `attempts` (each number's recent attempts at `now`; a number not there was never dialled):
    the caps (None: not checked)."""
    required = list(dict.fromkeys(required_variables))
    begin = max(now, start_at) if start_at else now
    rows: dict[int, PreflightRecipient] = {}
    earlier: Counter[str] = Counter()  # recipients before this one with its number
    for r in rejected:
        rows[r.index] = PreflightRecipient(index=r.index, id=r.id, valid=False, error=r.error)
    for recipient in sorted(accepted, key=lambda r: r.index):
        used = _zones(hours, recipient)
        is_suppressed = recipient.phone in suppressed
        first = None
        cap: tuple[datetime | None, str] | None = None
        if not is_suppressed:
            try:
                first = next_window_start_in(begin, hours, used)
            except ValueError:
                first = None
        if first is not None and contact_policy is not None:
            state = (attempts or {}).get(recipient.phone, NumberAttempts())
            cap = _cap(contact_policy, now, first, state, earlier[recipient.phone])
            earlier[recipient.phone] += 1
            if cap is not None and cap[0] is not None:
                try:
                    first = next_window_start_in(cap[0], hours, used)
                except ValueError:
                    first = None
        rows[recipient.index] = PreflightRecipient(
            index=recipient.index,
            id=recipient.recipient_id if recipient.recipient_id != recipient.phone else None,
            phone_number=mask_phone(recipient.phone),
            valid=True,
            region=_region(recipient.phone),
            timezones=used.zones,
            ambiguous_timezone=used.ambiguous,
            suppressed=is_suppressed,
            capped=cap is not None,
            capped_reason=cap[1] if cap else None,
            missing_variables=[name for name in required if name not in recipient.variables],
            first_dial_at=first,
        )
    recipients = [rows[i] for i in sorted(rows)]
    assert len(recipients) == len(items), "every item is accepted or rejected"
    counts = PreflightCounts(
        total=len(recipients),
        valid=sum(r.valid for r in recipients),
        invalid=sum(not r.valid for r in recipients),
        suppressed=sum(r.suppressed for r in recipients),
        capped=sum(r.capped for r in recipients),
        ambiguous_timezone=sum(r.ambiguous_timezone for r in recipients),
        missing_variables=sum(bool(r.missing_variables) for r in recipients),
    )
    return Preflight(
        recipients=recipients,
        counts=counts,
        projected_end_at=projected_end(recipients, average_call_seconds, concurrency),
    )


def _cap(
    policy: ContactPolicy, now: datetime, first: datetime, state: NumberAttempts, before: int
) -> tuple[datetime | None, str] | None:
    """Whether a cap holds back a recipient whose window opens at `first`: `(the moment it frees
    the number, why)`, or None. `before`: recipients earlier in the list with the same number,
    each of which takes at least one attempt first (the moment is then an estimate)."""
    grant = decide_attempt(
        policy, now, latest_at=state.latest_at, cap_at=state.cap_at, in_window=state.in_window
    )
    held = grant.next_allowed_at if not grant.allowed and grant.next_allowed_at else None
    if before == 0:
        return (held, grant.reason or "") if held is not None and held > first else None
    taken = state.in_window + before
    if taken >= policy.max_attempts_per_day:
        days = taken // policy.max_attempts_per_day
        return (
            max(first, held or first) + days * DAY,
            f"{before} earlier recipient{'s' if before != 1 else ''} of the list with this number: "
            f"{taken} attempts in 24 h (contact_policy.max_attempts_per_day: {policy.max_attempts_per_day})",
        )
    if policy.min_gap:
        return (
            max(first, held or first) + before * policy.min_gap,
            f"{before} earlier recipient{'s' if before != 1 else ''} of the list with this number "
            f"(contact_policy.min_minutes_between_attempts: {policy.min_minutes_between_attempts})",
        )
    return (held, grant.reason or "") if held is not None and held > first else None


def projected_end(
    recipients: list[PreflightRecipient], average_call_seconds: float, concurrency: int
) -> datetime | None:
    """First dial + ceil(n / concurrency) × the average call, over the valid, unsuppressed
    recipients that have a first dial; None when there is none."""
    firsts = [r.first_dial_at for r in recipients if r.valid and not r.suppressed and r.first_dial_at]
    if not firsts:
        return None
    rounds = math.ceil(len(firsts) / max(1, concurrency))
    return min(firsts) + timedelta(seconds=rounds * average_call_seconds)


def required_names(value: Any) -> list[str]:
    """The variable names of the `required_variables` config: a list of names, or a dict holding
    one under `variables` (a config value is stored as an object); anything else is none."""
    if isinstance(value, dict):
        value = value.get("variables")
    if not isinstance(value, list):
        return []
    return [name for name in value if isinstance(name, str) and name]


def _zones(hours: CallingHours | None, recipient: Recipient) -> ZonesUsed:
    return callee_zones(hours, recipient.phone, recipient.variables)


def _region(e164: str) -> str | None:
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region != "ZZ" else None
