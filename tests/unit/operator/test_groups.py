"""The instance-group reconciler's decisions: size, healing, autoscaling, rolling update. Pure."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from unkai.operator._groups import Decision, GroupSpec, MemberView, Memory, decide

NOW = 10_000.0
OLD, NEW = "sha-old", "sha-new"


def spec(size: int = 2, *, digest: str = OLD, slots: int = 5, **changes: object) -> GroupSpec:
    base = GroupSpec(
        # The object's name, as the operator has it: the group's after its environment's.
        name="unkai-local-web",
        size=size,
        min_size=size,
        max_size=size,
        slots={f"web-{i}": digest for i in range(slots)},
        initial_delay=60,
        max_repairs=2,
        repair_window=600,
        target_cpu=0.5,
        scale_in_stabilization=300,
        initialization=60,
    )
    return replace(base, **changes)


def member(
    index: int,
    *,
    digest: str = OLD,
    phase: str = "healthy",
    created: float = 0.0,
    cpu: float | None = None,
    ready: float | None = None,
) -> MemberView:
    return MemberView(
        name=f"web-{index}",
        digest=digest,
        phase=phase,
        created=created,
        cpu=cpu,  # type: ignore[arg-type]
        ready=ready,
    )


def settled(size: int = 2) -> Memory:
    return Memory(target=size, observed_size=size)


def reasons(decision: Decision) -> list[str]:
    return [e.reason for e in decision.events]


def test_a_new_group_fills_its_lowest_slots() -> None:
    decision = decide(spec(3), Memory(), [], now=NOW)
    assert decision.create == ("web-0", "web-1", "web-2")
    assert decision.target == 3
    assert reasons(decision) == ["MembersCreated"]
    assert decision.memory.observed_size == 3


def test_a_settled_group_does_nothing() -> None:
    decision = decide(spec(), settled(), [member(0), member(1)], now=NOW)
    assert (decision.create, decision.delete, decision.repair, decision.events) == ((), (), (), ())


def test_a_deleted_member_comes_back_in_its_slot() -> None:
    decision = decide(spec(), settled(), [member(1)], now=NOW)
    assert decision.create == ("web-0",)


def test_a_smaller_size_removes_unhealthy_members_first_then_the_highest_slot() -> None:
    members = [member(0), member(1, phase="unhealthy", created=NOW), member(2), member(3)]
    decision = decide(spec(2, slots=6), settled(4), members, now=NOW)
    assert reasons(decision)[0] == "SizeChanged"
    assert decision.delete == ("web-1", "web-3")


def test_a_size_outside_the_bounds_is_clamped() -> None:
    decision = decide(
        spec(2, min_size=1, max_size=3), Memory(target=7, observed_size=2), [], now=NOW
    )
    assert decision.target == 3
    assert "SizeClamped" in reasons(decision)


def test_a_stopped_member_is_recreated_at_once() -> None:
    decision = decide(
        spec(), settled(), [member(0, phase="stopped", created=NOW - 1), member(1)], now=NOW
    )
    assert decision.repair == ("web-0",)
    assert decision.create == decision.delete == ()
    assert decision.memory.repairs == (NOW,)
    assert "domain is not running" in decision.events[0].message


def test_an_unhealthy_member_waits_for_the_initial_delay() -> None:
    young = [member(0, phase="unhealthy", created=NOW - 30), member(1)]
    assert decide(spec(), settled(), young, now=NOW).repair == ()
    old = [member(0, phase="unhealthy", created=NOW - 61), member(1)]
    assert decide(spec(), settled(), old, now=NOW).repair == ("web-0",)


def test_repairs_are_rate_limited() -> None:
    failing = [member(i, phase="stopped") for i in range(3)]
    decision = decide(spec(3), settled(3), failing, now=NOW)
    assert decision.repair == ("web-0", "web-1")
    assert reasons(decision)[-1] == "RepairLimited"
    later = decide(spec(3), decision.memory, [member(2, phase="stopped")], now=NOW + 10)
    assert later.repair == ()
    # Once the window has passed, repairs start again.
    after = decide(spec(3), decision.memory, failing, now=NOW + 601)
    assert after.repair == ("web-0", "web-1")


def test_no_healing_when_it_is_off() -> None:
    decision = decide(
        spec(auto_healing=False), settled(), [member(0, phase="stopped"), member(1)], now=NOW
    )
    assert decision.repair == ()


def autoscaled(size: int = 2) -> GroupSpec:
    return spec(size, min_size=1, max_size=4)


def test_cpu_use_above_the_target_scales_out_at_once() -> None:
    members = [member(0, cpu=0.9), member(1, cpu=0.8)]
    decision = decide(autoscaled(), settled(), members, now=NOW)
    assert decision.target == 4  # 1.7 / 0.5 → 4
    assert decision.create == ("web-2", "web-3")
    assert reasons(decision) == ["ScaleOut", "MembersCreated"]


def test_scale_out_never_passes_max_size() -> None:
    members = [member(0, cpu=1.0), member(1, cpu=1.0)]
    assert decide(autoscaled(), settled(), members, now=NOW).target == 4


def test_young_members_count_as_needed_and_are_not_measured() -> None:
    members = [member(0, cpu=0.4), member(1, cpu=0.0, created=NOW - 10)]
    decision = decide(autoscaled(), settled(), members, now=NOW)
    assert decision.target == 2  # 0.4 / 0.5 → 1, plus the young one
    assert decision.memory.recommendations == ((NOW, 2),)


def test_initialization_counts_from_when_a_member_is_up_however_long_it_booted() -> None:
    # Made 100 s ago, up 10 s ago (a slow boot): what it does now is the end of its boot.
    busy = member(0, cpu=0.8, created=NOW - 100, ready=NOW - 10)
    decision = decide(autoscaled(1), settled(1), [busy], now=NOW)
    assert (decision.target, decision.memory.recommendations, decision.events) == (1, (), ())
    # Measured once ``initialization`` (60 s) has passed since it came up.
    later = decide(autoscaled(1), settled(1), [replace(busy, ready=NOW - 60)], now=NOW)
    assert (later.target, reasons(later)) == (2, ["ScaleOut", "MembersCreated"])


def test_a_healthy_member_not_measured_yet_counts_as_needed() -> None:
    members = [member(0, cpu=0.1), member(1, cpu=None)]
    decision = decide(autoscaled(), settled(), members, now=NOW)
    assert decision.memory.recommendations == ((NOW, 2),)  # 0.1 / 0.5 → 1, plus web-1


def test_nothing_measured_recommends_nothing() -> None:
    decision = decide(autoscaled(), settled(), [member(0), member(1)], now=NOW)
    assert (decision.target, decision.memory.recommendations) == (2, ())


def test_scale_in_waits_for_a_whole_stabilization_window() -> None:
    idle = [member(0, cpu=0.05), member(1, cpu=0.05), member(2, cpu=0.05)]
    memory = settled(3)
    for t in range(0, 300, 30):
        decision = decide(autoscaled(3), memory, idle, now=NOW + t)
        assert decision.target == 3, t
        memory = decision.memory
    decision = decide(autoscaled(3), memory, idle, now=NOW + 300)
    assert decision.target == 1
    assert decision.delete == ("web-2", "web-1")
    assert reasons(decision) == ["ScaleIn", "MembersRemoved"]


def test_scale_in_goes_to_the_largest_recommendation_of_the_window() -> None:
    memory = replace(settled(4), recommendations=((NOW - 400, 1), (NOW - 200, 3), (NOW - 100, 1)))
    members = [member(i, cpu=0.05) for i in range(4)]
    decision = decide(autoscaled(4), memory, members, now=NOW)
    assert decision.target == 3
    # Only the newest recommendation before the window is kept.
    assert decision.memory.recommendations == (
        (NOW - 400, 1),
        (NOW - 200, 3),
        (NOW - 100, 1),
        (NOW, 1),
    )


def test_no_autoscaling_between_equal_bounds() -> None:
    members = [member(0, cpu=1.0), member(1, cpu=1.0)]
    decision = decide(spec(), settled(), members, now=NOW)
    assert (decision.target, decision.memory.recommendations) == (2, ())


def test_an_update_with_surge_makes_a_new_member_first() -> None:
    decision = decide(spec(digest=NEW), settled(), [member(0), member(1)], now=NOW)
    assert decision.create == ("web-2",)
    assert decision.delete == ()
    assert reasons(decision) == ["UpdateSurge"]


def test_an_update_deletes_an_old_member_once_the_new_one_is_healthy() -> None:
    members = [member(0), member(1), member(2, digest=NEW, phase="booting")]
    assert decide(spec(digest=NEW), settled(), members, now=NOW).delete == ()
    members[2] = member(2, digest=NEW)
    decision = decide(spec(digest=NEW), settled(), members, now=NOW)
    assert decision.delete == ("web-1",)
    assert decision.create == ()


def test_an_update_without_surge_deletes_first() -> None:
    policy = spec(digest=NEW, max_surge=0, max_unavailable=1)
    decision = decide(policy, settled(), [member(0), member(1)], now=NOW)
    assert (decision.create, decision.delete) == ((), ("web-1",))
    decision = decide(policy, settled(), [member(0)], now=NOW)
    assert decision.create == ("web-1",)


def test_an_update_removes_old_unhealthy_members_first() -> None:
    members = [member(0), member(1, phase="unhealthy", created=NOW)]
    decision = decide(spec(digest=NEW, max_surge=0, max_unavailable=1), settled(), members, now=NOW)
    # The unhealthy one goes first (it costs nothing); the healthy one is the 1 kept.
    assert decision.delete == ("web-1",)
    members = [member(0), member(1, phase="unhealthy", created=NOW), member(2)]
    decision = decide(
        spec(3, digest=NEW, max_surge=0, max_unavailable=2), settled(3), members, now=NOW
    )
    assert decision.delete == ("web-1", "web-2")


def test_no_scale_in_during_an_update() -> None:
    memory = replace(settled(3), recommendations=((NOW - 400, 1),))
    members = [member(i, cpu=0.01) for i in range(3)]
    decision = decide(
        replace(autoscaled(3), slots={f"web-{i}": NEW for i in range(5)}), memory, members, now=NOW
    )
    assert decision.target == 3


def test_no_free_slot_is_said() -> None:
    decision = decide(spec(3, slots=2), settled(3), [member(0)], now=NOW)
    assert decision.create == ("web-1",)
    assert reasons(decision)[-1] == "NoFreeSlot"


def test_members_of_a_host_that_just_stopped_answering_still_count() -> None:
    members = [member(0), member(1, phase="unreachable")]
    decision = decide(spec(), settled(), members, now=NOW, down=frozenset({"web-1", "web-3"}))
    assert (decision.create, decision.delete, decision.repair, decision.events) == ((), (), (), ())


def test_lost_members_are_replaced_on_hosts_that_answer() -> None:
    # web-1 and web-3 are on the host that does not answer; web-2 and web-4 are free.
    members = [member(0), member(1, phase="lost")]
    decision = decide(spec(), settled(), members, now=NOW, down=frozenset({"web-1", "web-3"}))
    assert decision.create == ("web-2",)
    assert decision.delete == ()
    assert reasons(decision) == ["MembersCreated", "MembersLost"]
    assert "web-1" in decision.events[-1].message


def test_a_lost_member_back_with_its_host_makes_one_too_many_and_one_goes() -> None:
    members = [member(0), member(1), member(2, created=NOW - 100)]
    decision = decide(spec(), settled(), members, now=NOW)
    assert decision.create == ()
    assert decision.delete == ("web-2",)  # all healthy: the highest slot


def test_nothing_is_deleted_or_rolled_on_a_host_that_does_not_answer() -> None:
    new = spec(slots=5, digest=NEW)
    # Too many members, and all from the old template, but web-0 cannot be reached.
    members = [member(0, phase="unreachable"), member(1), member(2)]
    decision = decide(new, settled(), members, now=NOW, down=frozenset({"web-0"}))
    assert "web-0" not in decision.delete + decision.repair
    assert "web-0" not in decision.create


def test_no_free_slot_on_hosts_that_answer_is_said() -> None:
    members = [member(0), member(1, phase="lost")]
    decision = decide(spec(slots=2), settled(), members, now=NOW, down=frozenset({"web-1"}))
    assert decision.create == ()
    assert reasons(decision) == ["NoFreeSlot"]
    assert "does not answer" in decision.events[-1].message


def simulate(policy: GroupSpec, size: int, *, boot_rounds: int) -> tuple[int, int, int]:
    """Run an update to the end, members booting for ``boot_rounds`` rounds.

    Returns the most members that existed, the fewest that were healthy, and the rounds.
    """
    members = {f"web-{i}": [OLD, 0] for i in range(size)}  # name → [digest, rounds left booting]
    memory = settled(size)
    most, fewest = size, size
    for round_ in itertools.count():
        assert round_ < 100, "the update never finished"
        views = [
            MemberView(name, digest, "booting" if left else "healthy", created=0.0)
            for name, (digest, left) in members.items()
        ]
        decision = decide(policy, memory, views, now=NOW + round_)
        memory = decision.memory
        for name in decision.delete:
            del members[name]
        for name in decision.create:
            members[name] = [policy.slots[name], boot_rounds]
        most = max(most, len(members))
        for state in members.values():
            state[1] = max(state[1] - 1, 0) if state[0] == NEW else 0
        fewest = min(fewest, sum(1 for d, left in members.values() if not left))
        if all(d == NEW and not left for d, left in members.values()) and len(members) == size:
            return most, fewest, round_


@pytest.mark.parametrize(("surge", "unavailable"), [(1, 0), (2, 0), (0, 1), (1, 1), (2, 2), (0, 3)])
def test_an_update_keeps_its_bounds(surge: int, unavailable: int) -> None:
    size = 4
    policy = spec(
        size, digest=NEW, slots=size + surge, max_surge=surge, max_unavailable=unavailable
    )
    most, fewest, _ = simulate(policy, size, boot_rounds=2)
    assert most <= size + surge
    assert fewest >= size - unavailable
