"""Whom an integration's `CallQueue` serves next, decided without Temporal.

    picked = pick_grants(state, capacity)     # the waiters to grant now, in order; `state` unchanged
    for request in picked.requests: ...       # the queue records them as holders
    state.last_campaign = picked.last_campaign

`workflows.call_queue.CallQueue` is the one semaphore of all an integration's calls: a person's
single call, the retries and a campaign's thousands of recipients take slots from the same
`capacity`. The order in which its waiters get the free slots is decided here, by these rules:

1. **Who may hold a slot.** A waiter of a paused campaign (`state.paused_campaigns`) gets none,
   nor one whose campaign already holds `share` slots (its own `SlotRequest.share`; the holders of
   a campaign are counted from `state.holder_campaigns`). Such a waiter keeps its place in the
   queue and blocks nobody: the waiters below pass it by. A waiter of no campaign has no share and
   is never paused. The capacity holds for all together, whatever the shares add up to.
2. **Priority.** Of the waiters that may hold a slot, those of the lowest `SlotPriority` are
   served first: calls a person asked for, then retries, then a campaign's fresh recipients.
3. **Turns between campaigns.** Within that priority the waiters form groups by `campaign_id`
   (the calls of no campaign are one group, key None). The groups take turns in one fixed order,
   the no-campaign group first, then the campaigns sorted by id: the turn goes to the first group
   after `state.last_campaign` in that order that has a waiter there, wrapping around to the first.
   `last_campaign` None reads as "the no-campaign group was served last" (also before any turn).
   The turn moves (`last_campaign` changes) only when two or more groups were waiting at that
   priority: a call served alone, such as a person's call while no other is waiting beside it,
   takes nobody's turn. One turn order serves all priorities.
4. **Within a group** the first come is served first.

With every waiter at the defaults (priority PERSON, no campaign) there is one group, every waiter
may hold a slot and the turn never moves: the queue is first come, first served, the order it had
before campaigns, so the queues running then and their recorded histories replay unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from happ_integ.calls.contracts import QueueState, SlotRequest


@dataclass(frozen=True)
class Grants:
    """The waiters to grant a slot, in the order served, and whose turn it was last after them."""

    requests: list[SlotRequest] = field(default_factory=list)
    last_campaign: str | None = None


def pick_grants(state: QueueState, capacity: int) -> Grants:
    """The waiters of `state` that get the slots free under `capacity` now (see the module's
    rules), and the `last_campaign` to keep after them. Mutates nothing.

    The returned requests are the very objects of `state.waiters` (remove them by identity)."""
    campaigns = {holder: state.holder_campaigns.get(holder) for holder in state.holders}
    paused = frozenset(state.paused_campaigns)
    taken: set[int] = set()
    last = state.last_campaign
    requests: list[SlotRequest] = []
    while len(campaigns) < capacity:
        held = _held(campaigns)
        open_ = [i for i, w in enumerate(state.waiters) if i not in taken and may_hold(w, held, paused)]
        index, contested = _next(state.waiters, open_, last)
        if index is None:
            break
        request = state.waiters[index]
        taken.add(index)
        requests.append(request)
        # A holder granted again (a new attempt) keeps one slot, as before campaigns.
        campaigns[request.holder] = request.campaign_id
        if contested:
            last = request.campaign_id
    return Grants(requests=requests, last_campaign=last)


def any_grantable(state: QueueState) -> bool:
    """Whether some waiter may hold a slot once one is free (its campaign not paused, under its
    share): the queue asks before reading the capacity, to do nothing while all wait on a pause."""
    held = _held({h: state.holder_campaigns.get(h) for h in state.holders})
    paused = frozenset(state.paused_campaigns)
    return any(may_hold(w, held, paused) for w in state.waiters)


def may_hold(request: SlotRequest, held: Mapping[str, int], paused: frozenset[str]) -> bool:
    """Whether `request` may take a free slot: its campaign (if any) is not paused and holds fewer
    than the request's `share` slots (`held`: slots held per campaign)."""
    campaign = request.campaign_id
    if campaign is None:
        return True
    if campaign in paused:
        return False
    return request.share is None or held.get(campaign, 0) < request.share


def group_order(group: str | None) -> tuple[int, str]:
    """The fixed order of the turns: the calls of no campaign first, then campaigns by id."""
    return (0, "") if group is None else (1, group)


def next_turn(groups: Iterable[str | None], last: str | None) -> str | None:
    """The group whose turn it is after `last`: the first of `groups` after it in `group_order`,
    wrapping around to the first. `groups` must not be empty."""
    ordered = sorted(set(groups), key=group_order)
    after = [g for g in ordered if group_order(g) > group_order(last)]
    return (after or ordered)[0]


def _next(waiters: Sequence[SlotRequest], open_: Sequence[int], last: str | None) -> tuple[int | None, bool]:
    """The index of the next waiter to serve among the `open_` ones (None: nobody), and whether
    two or more groups were waiting at its priority (then the turn moves)."""
    if not open_:
        return None, False
    top = min(waiters[i].priority for i in open_)
    firsts: dict[str | None, int] = {}  # each group's first come at the top priority
    for i in open_:
        if waiters[i].priority == top:
            firsts.setdefault(waiters[i].campaign_id, i)
    return firsts[next_turn(firsts, last)], len(firsts) > 1


def _held(campaigns: Mapping[str, str | None]) -> Counter[str]:
    return Counter(c for c in campaigns.values() if c is not None)
