"""Whom the `CallQueue` serves next (`happ_integ.calls.queue_order`), without Temporal: priorities,
campaigns taking turns, each campaign's share, paused campaigns passed by, first come first served
within a group, and the plain first-come-first-served order of a queue with no campaigns."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from happ_integ.calls.contracts import QueueState, SlotPriority, SlotRequest
from happ_integ.calls.queue_order import any_grantable, next_turn, pick_grants

PERSON, RETRY, CAMPAIGN = SlotPriority.PERSON, SlotPriority.RETRY, SlotPriority.CAMPAIGN


def req(
    holder: str,
    priority: SlotPriority = PERSON,
    campaign: str | None = None,
    share: int | None = None,
    attempt: int = 1,
) -> SlotRequest:
    return SlotRequest(holder=holder, attempt=attempt, priority=priority, campaign_id=campaign, share=share)


def queue(*waiters: SlotRequest, **fields: object) -> QueueState:
    return QueueState(integration="sofa", waiters=list(waiters), **fields)  # type: ignore[arg-type]


def picked(state: QueueState, capacity: int) -> list[str]:
    return [r.holder for r in pick_grants(state, capacity).requests]


def serve(state: QueueState, capacity: int) -> list[str]:
    """Grant as `CallQueue` does: make holders of the picked waiters, keep whose turn was last."""
    grants = pick_grants(state, capacity)
    chosen = {id(r) for r in grants.requests}
    state.waiters = [w for w in state.waiters if id(w) not in chosen]
    for r in grants.requests:
        state.holders[r.holder] = r.attempt
        if r.campaign_id is not None:
            state.holder_campaigns[r.holder] = r.campaign_id
    state.last_campaign = grants.last_campaign
    return [r.holder for r in grants.requests]


def release(state: QueueState, holder: str) -> None:
    del state.holders[holder]
    state.holder_campaigns.pop(holder, None)


def campaign_holders(state: QueueState) -> Counter[str]:
    return Counter(state.holder_campaigns[h] for h in state.holders if h in state.holder_campaigns)


# A queue with no campaigns: exactly first come, first served ------------------------------------------


def test_a_queue_of_plain_calls_is_first_come_first_served() -> None:
    state = queue(*(req(f"h{i}") for i in range(6)), holders={"old": 1})
    assert picked(state, 3) == ["h0", "h1"]
    assert picked(state, 100) == [f"h{i}" for i in range(6)]
    assert pick_grants(state, 3).last_campaign is None


@pytest.mark.parametrize("seed", range(20))
def test_plain_calls_are_served_in_the_order_the_queue_served_them_before_campaigns(seed: int) -> None:
    # The order before campaigns: pop the first waiter while fewer holders than the capacity.
    rng = random.Random(seed)
    holders = {f"held{i}": 1 for i in range(rng.randrange(4))}
    waiters = [req(f"w{rng.randrange(8)}", attempt=rng.randrange(1, 3)) for _ in range(rng.randrange(10))]
    capacity = rng.randrange(1, 8)
    old_holders, old_waiters, before = dict(holders), list(waiters), []
    while old_waiters and len(old_holders) < capacity:
        request = old_waiters.pop(0)
        old_holders[request.holder] = request.attempt
        before.append(request)
    state = queue(*waiters, holders=holders)
    assert pick_grants(state, capacity).requests == before
    assert any_grantable(state) == bool(waiters)


def test_picking_changes_nothing_in_the_state() -> None:
    state = queue(req("a1", CAMPAIGN, "A", 1), req("p"), holders={"x": 1}, holder_campaigns={"x": "A"})
    copy = state.model_copy(deep=True)
    pick_grants(state, 5)
    any_grantable(state)
    assert state == copy


def test_nothing_is_granted_when_no_slot_is_free() -> None:
    state = queue(req("p"), holders={"a": 1, "b": 1})
    assert picked(state, 2) == [] and picked(state, 1) == []


# Priorities ---------------------------------------------------------------------------------------------


def test_a_persons_call_goes_before_retries_before_a_campaigns_recipients() -> None:
    state = queue(
        req("c1", CAMPAIGN, "A"),
        req("r1", RETRY, "A"),
        req("c2", CAMPAIGN, "B"),
        req("p1"),
        req("r2", RETRY),
        req("p2"),
    )
    assert picked(state, 1) == ["p1"]
    # r1 took A's turn among the retries, so B's comes first among the campaigns' recipients.
    assert picked(state, 6) == ["p1", "p2", "r1", "r2", "c2", "c1"]


def test_a_persons_call_after_ten_queued_campaign_calls_takes_the_next_free_slot() -> None:
    state = queue(
        *(req(f"c{i}", CAMPAIGN, "A", 10) for i in range(10)),
        req("person"),
        holders={"a": 1, "b": 1},
        holder_campaigns={"a": "A", "b": "A"},
    )
    assert picked(state, 2) == []
    release(state, "a")
    assert serve(state, 2) == ["person"]


# Turns between campaigns ----------------------------------------------------------------------------------


def test_campaigns_take_turns_within_a_priority() -> None:
    state = queue(
        *(req(f"a{i}", CAMPAIGN, "A") for i in range(3)), *(req(f"b{i}", CAMPAIGN, "B") for i in range(3))
    )
    assert picked(state, 4) == ["a0", "b0", "a1", "b1"]
    assert pick_grants(state, 4).last_campaign == "B"


def test_the_turn_goes_to_the_group_after_the_last_served_in_id_order_wrapping_around() -> None:
    waiters = [req("c", CAMPAIGN, "C"), req("a", CAMPAIGN, "A"), req("b", CAMPAIGN, "B"), req("n", CAMPAIGN)]
    assert picked(queue(*waiters, last_campaign="A"), 4) == ["b", "c", "n", "a"]
    assert picked(queue(*waiters, last_campaign="C"), 4) == ["n", "a", "b", "c"]
    # None: the calls of no campaign were served last (also when nothing was served yet).
    assert picked(queue(*waiters), 4) == ["a", "b", "c", "n"]
    # A campaign no longer waiting still marks the place of the turn.
    assert picked(queue(*waiters, last_campaign="AB"), 1) == ["b"]


def test_next_turn_orders_no_campaign_first_then_campaigns_by_id() -> None:
    assert next_turn(["B", None, "A"], None) == "A"
    assert next_turn(["B", None, "A"], "A") == "B"
    assert next_turn(["B", None, "A"], "B") is None
    assert next_turn(["B"], "B") == "B"


def test_turns_are_kept_across_rounds_as_slots_free_up() -> None:
    state = queue(
        *(req(f"a{i}", CAMPAIGN, "A") for i in range(4)), *(req(f"b{i}", CAMPAIGN, "B") for i in range(4))
    )
    served = serve(state, 1)
    for _ in range(5):
        release(state, served[-1])
        served += serve(state, 1)
    assert served == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_a_call_served_alone_at_its_priority_takes_no_campaigns_turn() -> None:
    state = queue(
        req("a1", CAMPAIGN, "A"), req("b1", CAMPAIGN, "B"), req("a2", CAMPAIGN, "A"), last_campaign="A"
    )
    state.waiters.insert(0, req("person"))
    assert serve(state, 1) == ["person"]
    assert state.last_campaign == "A"  # the person's call was alone at its priority
    assert serve(state, 2) == ["b1"]  # so B's turn, after A's, still comes


def test_within_a_group_the_first_come_is_served_first() -> None:
    state = queue(
        req("a1", CAMPAIGN, "A"), req("b1", CAMPAIGN, "B"), req("a2", CAMPAIGN, "A"), req("a3", CAMPAIGN, "A")
    )
    assert picked(state, 4) == ["a1", "b1", "a2", "a3"]


def test_plain_calls_are_one_group_taking_turns_with_campaigns() -> None:
    state = queue(req("r1", RETRY), req("r2", RETRY), req("ra", RETRY, "A"), last_campaign="A")
    assert picked(state, 3) == ["r1", "ra", "r2"]


# Shares ---------------------------------------------------------------------------------------------------


def test_a_campaign_gets_no_slot_beyond_its_share_and_blocks_nobody() -> None:
    state = queue(
        req("a3", CAMPAIGN, "A", 2),
        req("b1", CAMPAIGN, "B", 2),
        holders={"a1": 1, "a2": 1},
        holder_campaigns={"a1": "A", "a2": "A"},
    )
    assert picked(state, 10) == ["b1"]
    state.waiters.insert(0, req("p", PERSON, "A", 2))  # a person's call of the campaign: its share too
    assert picked(state, 10) == ["b1"]


def test_a_share_counts_the_slots_granted_in_the_same_round() -> None:
    state = queue(*(req(f"a{i}", CAMPAIGN, "A", 2) for i in range(5)), req("p", RETRY))
    assert picked(state, 10) == ["p", "a0", "a1"]


def test_a_share_above_the_capacity_leaves_the_capacity_in_charge() -> None:
    state = queue(*(req(f"a{i}", CAMPAIGN, "A", 50) for i in range(5)))
    assert picked(state, 3) == ["a0", "a1", "a2"]


def test_a_share_of_a_call_of_no_campaign_is_ignored() -> None:
    state = queue(req("p1", share=0), req("p2", share=0))
    assert picked(state, 2) == ["p1", "p2"]


def test_holders_of_no_campaign_do_not_count_against_a_share() -> None:
    state = queue(req("a1", CAMPAIGN, "A", 1), holders={"p": 1, "b": 1}, holder_campaigns={"b": "B"})
    assert picked(state, 3) == ["a1"]


def test_two_campaigns_with_shares_of_three_share_a_capacity_of_four_in_turns() -> None:
    state = queue(
        *(req(f"a{i}", CAMPAIGN, "A", 3) for i in range(8)),
        *(req(f"b{i}", CAMPAIGN, "B", 3) for i in range(8)),
    )
    served = serve(state, 4)
    assert served == ["a0", "b0", "a1", "b1"]
    rng = random.Random(7)
    while state.waiters:
        release(state, rng.choice(sorted(state.holders)))  # a call ends, any call
        served += serve(state, 4)
        held = campaign_holders(state)
        assert len(state.holders) <= 4 and held["A"] <= 3 and held["B"] <= 3
    # Each turn alternates while both campaigns wait and neither is at its share.
    assert served[:4] == ["a0", "b0", "a1", "b1"]
    assert sorted(served) == sorted(f"{c}{i}" for c in "ab" for i in range(8))


def test_turns_alternate_when_both_campaigns_are_under_their_shares() -> None:
    state = queue(
        *(req(f"a{i}", CAMPAIGN, "A", 3) for i in range(6)),
        *(req(f"b{i}", CAMPAIGN, "B", 3) for i in range(6)),
    )
    served = serve(state, 4)  # a0 b0 a1 b1
    for holder in ["a0", "b0", "a1", "b1"]:  # calls end one by one, in the order they began
        release(state, holder)
        served += serve(state, 4)
    assert served == ["a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3"]


def test_a_campaign_at_its_share_lets_the_other_take_the_free_slot() -> None:
    # A holds 3 of 4 (its share) and B 0: a free slot goes to B even when it is A's turn.
    state = queue(
        req("a4", CAMPAIGN, "A", 3),
        req("b1", CAMPAIGN, "B", 3),
        holders={"a1": 1, "a2": 1, "a3": 1},
        holder_campaigns={"a1": "A", "a2": "A", "a3": "A"},
        last_campaign="B",
    )
    assert picked(state, 4) == ["b1"]


def test_a_campaign_at_its_share_with_nobody_else_waiting_leaves_the_slot_free() -> None:
    state = queue(
        req("a4", CAMPAIGN, "A", 3),
        holders={"a1": 1, "a2": 1, "a3": 1},
        holder_campaigns={"a1": "A", "a2": "A", "a3": "A"},
    )
    assert picked(state, 4) == [] and not any_grantable(state)
    release(state, "a1")
    assert any_grantable(state) and serve(state, 4) == ["a4"]


# Paused campaigns ------------------------------------------------------------------------------------------


def test_a_paused_campaign_gets_nothing_and_blocks_nobody() -> None:
    state = queue(
        req("a1", CAMPAIGN, "A"),
        req("a2", CAMPAIGN, "A"),
        req("b1", CAMPAIGN, "B"),
        req("r1", RETRY, "A"),
        req("p1"),
        paused_campaigns=["A"],
    )
    assert picked(state, 10) == ["p1", "b1"]


def test_a_queue_of_paused_waiters_only_has_nothing_to_grant() -> None:
    state = queue(req("a1", CAMPAIGN, "A"), req("a2", CAMPAIGN, "A"), paused_campaigns=["A"])
    assert picked(state, 10) == [] and not any_grantable(state)
    state.paused_campaigns = []
    assert any_grantable(state) and picked(state, 10) == ["a1", "a2"]


def test_the_holders_of_a_paused_campaign_still_count_against_its_share_and_the_capacity() -> None:
    state = queue(
        req("a3", CAMPAIGN, "A", 2),
        req("p"),
        holders={"a1": 1, "a2": 1},
        holder_campaigns={"a1": "A", "a2": "A"},
        paused_campaigns=["A"],
    )
    assert picked(state, 3) == ["p"]
    state.paused_campaigns = []
    assert picked(state, 4) == ["p"]  # A is at its share of 2


# Holders granted again ------------------------------------------------------------------------------------


def test_a_holder_granted_a_new_attempt_keeps_one_slot() -> None:
    # As before campaigns: a holder's second attempt replaces its first, it takes no second slot.
    state = queue(req("h", attempt=2), req("x"), holders={"h": 1})
    assert picked(state, 2) == ["h", "x"]


def test_every_combination_stays_within_capacity_and_shares() -> None:
    priorities = [PERSON, RETRY, CAMPAIGN]
    campaigns: list[str | None] = [None, "A", "B"]
    for seed in range(200):
        rng = random.Random(seed)
        waiters = [
            req(f"w{i}", rng.choice(priorities), c, rng.choice([None, 1, 2]) if c else None)
            for i, c in enumerate(rng.choice(campaigns) for _ in range(rng.randrange(12)))
        ]
        state = queue(*waiters, paused_campaigns=rng.sample(["A", "B"], rng.randrange(3)))
        capacity = rng.randrange(1, 6)
        grants = pick_grants(state, capacity).requests
        assert len(grants) <= capacity and len({id(g) for g in grants}) == len(grants)
        held: Counter[str] = Counter()
        for g in grants:
            if g.campaign_id is not None:
                assert g.campaign_id not in state.paused_campaigns
                held[g.campaign_id] += 1
                assert g.share is None or held[g.campaign_id] <= g.share
        # Nobody left waiting could have taken a slot that stayed free.
        if len(grants) < capacity:
            left = [w for w in waiters if all(w is not g for g in grants)]
            for w in left:
                c = w.campaign_id
                assert c is not None
                assert c in state.paused_campaigns or (w.share is not None and held[c] >= w.share)
        # Priorities never go backwards within one round.
        assert all(a.priority <= b.priority for a, b in itertools.pairwise(grants))
