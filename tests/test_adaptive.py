"""The adaptive pacing's rules (heartbeat/adaptive.py), one by one, with time and readings
as arguments; tests/test_pacing.py runs it against a real MariaDB and a real load."""

from __future__ import annotations

from heartbeat import adaptive
from heartbeat.adaptive import DECIDE_S, MIN_DUTY, START_DUTY, STEP_UP, Controller


def baseline(duty: float, floor: float = 0.0) -> Controller:
    """A controller that saw a quiet server answer in 1 ms (one window), at ``duty``."""
    controller = Controller(quiet_per_s=20, max_delay_ratio=1.25, duty=duty, floor=floor)
    controller.observe(0.0, 0, 0.001)
    controller.observe(DECIDE_S, 0, 0.001)
    controller.duty = duty  # that quiet window doubled it
    return controller


def windows(controller: Controller, count: int, look_s: float, per_s: float = 200.0) -> list[float]:
    """``count`` decision windows more, on a site sending ``per_s`` statements a second
    and a server answering in ``look_s``: the duty after each."""
    duties = []
    for _ in range(count):
        assert controller._window_start is not None
        now = controller._window_start + DECIDE_S
        controller.observe(now, per_s * DECIDE_S, look_s)
        duties.append(controller.duty)
    return duties


def test_a_quiet_site_gets_the_run_unpaced_at_once() -> None:
    controller = Controller(quiet_per_s=20, max_delay_ratio=1.25)
    decision = controller.start(others_per_s=3)
    assert (decision.before, decision.after) == (START_DUTY, 1.0)
    assert decision.why == "the site is quiet (3 statements/s)"


def test_a_busy_site_starts_gently_and_never_below_what_the_deadline_needs() -> None:
    controller = Controller(quiet_per_s=20, max_delay_ratio=1.25)
    assert controller.start(others_per_s=200).after == START_DUTY
    late = Controller(quiet_per_s=20, max_delay_ratio=1.25, floor=0.4)
    assert late.start(others_per_s=200).after == 0.4


def test_decisions_come_once_per_window() -> None:
    controller = Controller(quiet_per_s=20, max_delay_ratio=1.25, duty=0.5)
    assert controller.observe(0.0, 0, 0.001) is None
    assert controller.observe(DECIDE_S / 2, 0, 0.001) is None
    assert controller.decisions == 0
    decision = controller.observe(DECIDE_S, 0, 0.001)
    assert decision is not None and decision.after == 1.0
    assert controller.decisions == 1


def test_a_busy_server_that_answers_slower_halves_the_duty_down_to_the_minimum() -> None:
    controller = baseline(duty=1.0)
    duties = windows(controller, 10, look_s=0.002)
    assert duties[:4] == [0.5, 0.25, 0.125, 0.0625]
    assert duties[-1] == MIN_DUTY
    assert controller.backoffs == 7  # 1 -> 1/128 in seven halvings, then the minimum
    assert controller.lowest == MIN_DUTY


def test_a_busy_server_that_keeps_up_lets_the_duty_grow_a_step() -> None:
    controller = baseline(duty=0.1)
    [after] = windows(controller, 1, look_s=0.0012)  # 20 % over the baseline: within 25 %
    assert after == 0.1 + STEP_UP
    assert controller.backoffs == 0


def test_a_load_that_ends_lets_the_run_speed_up_again() -> None:
    controller = baseline(duty=1.0)
    assert windows(controller, 5, look_s=0.005)[-1] == 1 / 32
    duties = windows(controller, 6, look_s=0.001, per_s=0)
    assert duties[-1] == 1.0
    assert duties == sorted(duties)


def test_the_baseline_follows_a_server_that_became_slower_for_good() -> None:
    controller = baseline(duty=0.5)
    assert controller.base(DECIDE_S) == 0.001
    later = DECIDE_S + adaptive.BASE_WINDOW_S + 1
    controller.observe(later, 0, 0.004)
    controller.observe(later + DECIDE_S, 0, 0.004)
    assert controller.base(later + DECIDE_S) == 0.004


def test_the_deadline_floor_wins_over_a_backoff() -> None:
    controller = baseline(duty=1.0, floor=0.3)
    assert windows(controller, 3, look_s=0.01) == [0.5, 0.3, 0.3]
