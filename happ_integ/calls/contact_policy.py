"""How often one number may be dialled: the `contact_policy` config, and the decision it makes.

    policy = await ctx.config.get("contact_policy", ContactPolicy)   # {"max_attempts_per_day": 3, …}
    grant = decide_attempt(policy, now, latest_at=…, cap_at=…, in_window=…)
    grant.allowed, grant.next_allowed_at, grant.reason

`PUT /{integration}/config/contact_policy {"max_attempts_per_day": 2}` changes one cap and keeps
the other. The caps count every attempt on the number, by any call, campaign or integration that
shares the database (`happ_integ.stores.contact_attempts` takes an attempt and counts it in one
step); `call_handling.max_attempts` still bounds the attempts of one call.

Pure (no I/O), so workflow code may use it as it is.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

CONFIG_KEY = "contact_policy"
DAY = timedelta(hours=24)


class ContactPolicy(BaseModel):
    """The `contact_policy` config: attempt caps per phone number.

    - `max_attempts_per_day`: attempts on one number in any rolling 24 hours (an attempt made at
      10:00 counts until 10:00 the next day);
    - `min_minutes_between_attempts`: the least time from one attempt on a number to the next.

    Some laws cap calls per number. Florida's and Oklahoma's telephone solicitation acts, for
    example, allow at most three commercial calls to a person on the same subject in 24 hours;
    the defaults (three a day, an hour apart) follow that example. They are not legal advice and
    not a finding that any campaign complies with any law: which rules apply to a campaign, and so
    which values to set, is for the user who runs it to decide.
    """

    model_config = ConfigDict(extra="forbid")

    max_attempts_per_day: int = Field(
        default=3, ge=1, le=50, description="attempts on one number in any rolling 24 hours"
    )
    min_minutes_between_attempts: int = Field(
        default=60, ge=0, le=1440, description="minutes from one attempt on a number to the next; 0: no gap"
    )

    @property
    def min_gap(self) -> timedelta:
        return timedelta(minutes=self.min_minutes_between_attempts)


# What `happ dev --simulate` and the test stacks set: the simulator's few numbers are dialled many
# times an hour, which the defaults would hold back for a day.
RELAXED_CONTACT_POLICY = {"max_attempts_per_day": 50, "min_minutes_between_attempts": 0}


class AttemptGrant(BaseModel):
    """The answer to "may this number be dialled now?": when not, the first moment it may be, and
    which cap said no (`"3 attempts in 24 h (contact_policy.max_attempts_per_day: 3)"`)."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    next_allowed_at: datetime | None = None
    reason: str | None = None


class NumberAttempts(BaseModel):
    """A number's recent attempts, as `decide_attempt` reads them (see there)."""

    model_config = ConfigDict(frozen=True)

    latest_at: datetime | None = None
    cap_at: datetime | None = None
    in_window: int = 0


def decide_attempt(
    policy: ContactPolicy,
    now: datetime,
    *,
    latest_at: datetime | None,
    cap_at: datetime | None,
    in_window: int,
) -> AttemptGrant:
    """Whether an attempt at `now` is within `policy`.

    - `latest_at`: the number's latest attempt (None: never dialled);
    - `cap_at`: its `max_attempts_per_day`-th most recent attempt within the 24 hours before `now`
      (None: fewer than that many), the one whose expiry frees the next slot;
    - `in_window`: how many attempts those 24 hours hold.

    An attempt exactly 24 hours old no longer counts, and one exactly `min_minutes_between_attempts`
    old no longer holds the next back.
    """
    reasons: list[str] = []
    waits: list[datetime] = []
    if cap_at is not None and cap_at + DAY > now:
        waits.append(cap_at + DAY)
        count = max(in_window, policy.max_attempts_per_day)
        reasons.append(
            f"{count} attempt{'s' if count != 1 else ''} in 24 h "
            f"(contact_policy.max_attempts_per_day: {policy.max_attempts_per_day})"
        )
    if latest_at is not None and latest_at + policy.min_gap > now:
        waits.append(latest_at + policy.min_gap)
        reasons.append(
            f"last attempt {_ago(now - latest_at)} ago "
            f"(contact_policy.min_minutes_between_attempts: {policy.min_minutes_between_attempts})"
        )
    if not waits:
        return AttemptGrant(allowed=True)
    return AttemptGrant(allowed=False, next_allowed_at=max(waits), reason="; ".join(reasons))


def _ago(elapsed: timedelta) -> str:
    seconds = max(0, int(elapsed.total_seconds()))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min"
