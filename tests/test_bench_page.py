"""docs/performance.md is written by three benches: bench/run.py rewrites the page, and
bench/harm.py and bench/footprint.py each own blocks at its end. A run of one must not
lose what another measured (some take an hour), nor the words written under a heading."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import harm, report

NARRATIVE = "What the neighbour blocks show, written by hand.\n"
FOOTPRINT = f"{report.FOOTPRINT_BEGIN}\n## Footprint\n\nfootprint table\n{report.FOOTPRINT_END}\n"


def page(tmp_path: Path) -> Path:
    begin, end = report.neighbour_markers()
    path = tmp_path / "performance.md"
    path.write_text(
        "# Performance\n\nrun.py's tables\n\n"
        f"{report.NEIGHBOUR_HEADING}\n\n{NARRATIVE}\n{begin}\nthe 200 q/s table\n{end}\n\n"
        f"{FOOTPRINT}",
        encoding="utf-8",
    )
    return path


def block(name: str, body: str) -> str:
    begin, end = report.neighbour_markers(name)
    return f"{begin}\n{body}\n{end}"


def test_a_named_block_goes_after_the_others_and_a_second_run_replaces_only_it(tmp_path):
    path = page(tmp_path)
    harm.write_doc(path, block("heavy", "the 1000 q/s table, first run"), "heavy")
    harm.write_doc(path, block("heavy", "the 1000 q/s table, second run"), "heavy")
    text = path.read_text(encoding="utf-8")
    assert "first run" not in text
    order = [NARRATIVE, "the 200 q/s table", "the 1000 q/s table, second run", "footprint table"]
    assert [text.index(part) for part in order] == sorted(text.index(part) for part in order)
    harm.write_doc(path, block("", "the 200 q/s table, again"), "")
    text = path.read_text(encoding="utf-8")
    assert "the 200 q/s table\n" not in text
    assert "the 200 q/s table, again" in text and "second run" in text and NARRATIVE in text


def test_the_benches_sections_survive_a_rewrite_of_the_page_above_them(tmp_path):
    path = page(tmp_path)
    harm.write_doc(path, block("million", "the N = 1,000,000 table"), "million")
    kept = report.kept_sections(path.read_text(encoding="utf-8"))
    assert kept.startswith(report.NEIGHBOUR_HEADING)
    for part in (NARRATIVE, "the 200 q/s table", "the N = 1,000,000 table", "footprint table"):
        assert part in kept
    assert "run.py's tables" not in kept


def test_each_block_has_its_own_plots():
    args = argparse.Namespace(block="heavy")
    assert harm.png(args, 10_000) == "neighbour-heavy-10000.png"
    assert harm.png(args, 10_000, "midway") == "neighbour-heavy-midway-10000.png"
    assert harm.png(argparse.Namespace(block=""), 10_000) == "neighbour-10000.png"


def test_the_midway_drop_is_read_from_the_jobs_batches():
    """A job at 1,000 students/s for 4 s, the neighbour joins at 4 s, the job keeps the
    pace for 0.5 s more and then writes 100 students/s: the first second of batches under
    a quarter of the pace starts 0.5 s after the join."""
    phase = harm.Phase("midway", start=100.0, end=110.0)
    phase.batches = [(100.0 + i / 10, 100 * i) for i in range(1, 46)]  # to 4.5 s
    phase.batches += [(104.5 + i, 4500 + 100 * i) for i in range(1, 6)]
    size = harm.Size(10_000, [], [], 100.0, midway=phase, neighbour_joined=104.0)
    before, after, rate = harm.midway_drop(size)
    assert before == 1000
    assert after == 0.5 and rate <= 250
    size.neighbour_joined = 0.0
    assert harm.midway_drop(size) is None


def test_runs_named_twice_are_summed_up_with_their_median():
    def phase(name: str, latencies: list[float], job_s: float | None = 1.0) -> harm.Phase:
        return harm.Phase(name, 0.0, job_s=job_s, latencies=latencies)

    idle = [1.0] * 100  # idle p99 1.0 ms
    size = harm.Size(
        10_000,
        [
            phase("quiet adaptive", [], 1.0),
            phase("idle", idle, None),
            phase("fixed", [1.1] * 100),
            phase("adaptive", [0.9] * 100),
            phase("idle after adaptive", idle, None),
            phase("adaptive", [3.0] * 100),
            phase("unpaced", [9.0] * 100),
            phase("adaptive", [1.2] * 100),
        ],
        [],
        0.0,
    )
    assert harm.repeated(size) == {"adaptive": [0.9, 3.0, 1.2]}
    said = harm.said_repeats(size)
    assert "adaptive 0.90x, 3.00x, 1.20x (median 1.20x)" in said
    assert "fixed" not in said and "unpaced" not in said
    size.phases = size.phases[:4]
    assert harm.said_repeats(size) == ""
