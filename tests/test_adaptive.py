"""The adaptive pacing's rules (heartbeat/adaptive.py), one by one, with time and readings
as arguments; tests/test_pacing.py runs it against a real MariaDB and a real load."""

from __future__ import annotations

import re

import pytest

from heartbeat import adaptive
from heartbeat.adaptive import (
    DECIDE_S,
    GROWTH,
    MIN_DUTY,
    START_DUTY,
    WINDOW_PROBES,
    Controller,
)
from tests.conftest import ROOT

BUSY = 200.0  # the site's statements per second


def probes(start: float, count: int, took: float, idle: bool = False) -> list:
    """``count`` probes 10 ms apart from ``start``, each answered in ``took`` seconds."""
    return [(start + i * 0.01, took, idle) for i in range(count)]


def baseline(duty: float, floor: float = 0.0, idle: float = 0.001) -> Controller:
    """A controller on a busy site that saw a hundred idle probes answer in ``idle``
    seconds (1 ms: the limit is 1.25 ms), at ``duty``."""
    controller = Controller(quiet_per_s=20, max_delay_ratio=1.25, duty=duty, floor=floor)
    controller.busy = True
    controller.observe(0.0, 0, probes(0.0, 100, idle, idle=True))
    controller._window.clear()
    return controller


def windows(controller: Controller, count: int, took: float, per_s: float = BUSY) -> list[float]:
    """``count`` decision windows more, each of a full window of probes sent while the
    job worked and answered in ``took`` seconds, on a site sending ``per_s`` statements
    a second: the duty after each."""
    duties = []
    for _ in range(count):
        assert controller._window_start is not None
        now = controller._window_start + 1.0
        controller.observe(now, per_s * 1.0, probes(now - 1.0, WINDOW_PROBES, took))
        duties.append(controller.duty)
    return duties


def test_a_quiet_site_gets_the_run_unpaced_at_once() -> None:
    controller = Controller(quiet_per_s=20, max_delay_ratio=1.25)
    decision = controller.start(others_per_s=3)
    assert (decision.before, decision.after) == (START_DUTY, 1.0)
    assert decision.why == "the site is quiet (3 statements/s)"
    assert not controller.busy  # the probe is not sent on a quiet site


def test_a_busy_site_starts_gently_and_never_below_what_the_deadline_needs() -> None:
    controller = Controller(quiet_per_s=20, max_delay_ratio=1.25)
    assert controller.start(others_per_s=200).after == START_DUTY
    assert controller.busy
    late = Controller(quiet_per_s=20, max_delay_ratio=1.25, floor=0.4)
    assert late.start(others_per_s=200).after == 0.4


def test_decisions_on_the_sites_traffic_come_once_per_window() -> None:
    controller = Controller(quiet_per_s=20, max_delay_ratio=1.25, duty=0.5)
    assert controller.observe(0.0, 0) is None
    assert controller.observe(DECIDE_S / 2, 0) is None
    assert controller.decisions == 0
    decision = controller.observe(DECIDE_S, 0)
    assert decision is not None and decision.after == 1.0
    assert controller.decisions == 1


def test_slow_probes_on_a_busy_site_halve_the_duty_down_to_the_minimum() -> None:
    controller = baseline(duty=1.0)
    duties = windows(controller, 10, took=0.002)
    assert duties[:4] == [0.5, 0.25, 0.125, 0.0625]
    assert duties[-1] == MIN_DUTY
    assert controller.backoffs == 7  # 1 -> 1/128 in seven halvings, then the minimum
    assert controller.lowest == MIN_DUTY


def test_probes_within_the_delay_let_the_duty_grow_a_tenth_once_a_window_is_full() -> None:
    controller = baseline(duty=0.1)
    # 20 % over the idle p99: within 25 %; half a window decides nothing yet
    assert controller.observe(DECIDE_S, BUSY * DECIDE_S, probes(0.0, 50, 0.0012)) is None
    decision = controller.observe(2 * DECIDE_S, BUSY * DECIDE_S, probes(0.5, 50, 0.0012))
    assert decision is not None and decision.after == 0.1 * (1 + GROWTH)
    assert decision.why == (
        "the site is busy (200 statements/s) and 0 of 100 probes took over 1.25 ms"
    )
    assert controller.backoffs == 0
    # the step is relative to the duty: as slow to double at 2 % as at 40 %
    low, high = baseline(duty=0.02), baseline(duty=0.4)
    assert windows(low, 8, took=0.001)[-1] / 0.02 == windows(high, 8, took=0.001)[-1] / 0.4
    assert 2 < windows(baseline(duty=0.02), 8, took=0.001)[-1] / 0.02 < 2.2


def test_one_slow_probe_in_a_hundred_is_the_p99_allowed_two_are_not() -> None:
    controller = baseline(duty=0.1)
    window = probes(0.0, 99, 0.001) + probes(1.0, 1, 0.005)
    controller.observe(DECIDE_S, BUSY * DECIDE_S, window)
    assert controller.duty == 0.1 * (1 + GROWTH)
    # two slow probes decide at once, without waiting for the window to fill, and, just
    # past the p99, take a fifth off: a halving there swung the duty from 1 % to 6 %
    decision = controller.observe(2 * DECIDE_S, BUSY * DECIDE_S, probes(1.1, 2, 0.005))
    assert decision is not None
    assert decision.after == pytest.approx(0.1 * (1 + GROWTH) * 0.8)
    assert decision.why.endswith("2 of 2 probes took over 1.25 ms")


def test_the_cut_grows_with_the_slow_probes_up_to_a_halving() -> None:
    cuts = []
    for slow in (2, 3, 5, 10, 40):
        controller = baseline(duty=0.1)
        window = probes(0.0, WINDOW_PROBES - slow, 0.001) + probes(1.0, slow, 0.005)
        controller.observe(DECIDE_S, BUSY * DECIDE_S, window)
        cuts.append(round(controller.duty / 0.1, 6))
    assert cuts == [0.8, 0.7, 0.5, 0.5, 0.5]


def test_a_load_that_ends_lets_the_run_speed_up_again() -> None:
    controller = baseline(duty=1.0)
    assert windows(controller, 5, took=0.005)[-1] == 1 / 32
    duties = windows(controller, 6, took=0.001, per_s=0)
    assert duties[-1] == 1.0
    assert duties == sorted(duties)
    assert not controller.busy


def test_the_baseline_follows_a_server_that_became_slower_for_good() -> None:
    """Probes slow while the job rests are the site's own load, not the job's doing."""
    controller = baseline(duty=0.5)
    assert controller.limit(1.0) == 0.001 * 1.25
    later = adaptive.BASE_WINDOW_S + 2
    controller.observe(later, 0, probes(later - 1, 60, 0.004, idle=True))
    assert controller.limit(later) == 0.004 * 1.25


def test_without_an_idle_answer_time_a_busy_site_brings_the_duty_to_the_start_duty() -> None:
    """A site that becomes busy while the run is unpaced: no rests yet, so no idle
    probes; the duty halves towards the start duty to make some, and holds there."""
    controller = Controller(quiet_per_s=20, max_delay_ratio=1.25, duty=1.0)
    duties = []
    for step in range(1, 8):
        controller.observe(step * DECIDE_S, BUSY * DECIDE_S, probes(step * DECIDE_S, 20, 0.009))
        duties.append(controller.duty)
    assert duties == [1.0, 0.5, 0.25, 0.125, 0.0625, START_DUTY, START_DUTY]
    baseline_known = baseline(duty=0.5)
    baseline_known.forget_baseline()  # the probe failed: no more idle probes will come
    assert baseline_known.limit(1.0) is None


def test_the_deadline_floor_wins_over_a_backoff() -> None:
    controller = baseline(duty=1.0, floor=0.3)
    assert windows(controller, 3, took=0.01) == [0.5, 0.3, 0.3]


def test_the_readmes_example_of_a_cut_is_what_the_controller_prints() -> None:
    """The README shows one ``--verbose`` line of a cut; the controller, given what that
    line says (the site's rate, the limit, the slow probes in the window), cuts to the
    duty it shows. It showed a halving after the steps became relative."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(
        r"the site is busy\s+\((\d+) statements/s\) and (\d+) of (\d+) probes took over"
        r" ([0-9.]+) ms: duty (\d+)% -> (\d+)%",
        readme,
    )
    assert example, "README: no --verbose example of a cut"
    per_s, slow, count, limit_ms, before, after = example.groups()
    idle = float(limit_ms) / 1000 / 1.25  # the idle p99 that gives that limit
    controller = baseline(duty=int(before) / 100, idle=idle)
    window = probes(1.0, int(count) - int(slow), idle) + probes(1.5, int(slow), idle * 4)
    decision = controller.observe(DECIDE_S, float(per_s) * DECIDE_S, window)
    assert decision is not None
    assert decision.why == (
        f"the site is busy ({per_s} statements/s) and {slow} of {count} probes took over"
        f" {limit_ms} ms"
    )
    assert f"{decision.after * 100:.0f}" == after, decision
