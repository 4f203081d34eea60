"""Which signal tells the harm a run does: the job at a fixed duty, its signals recorded.

A wrapper for ``bench/harm.py --paced-wrapper``: it runs the job (the command after its
own options) with the adaptive controller pinned to ``--duty`` and records, in ``--out``
(JSON), what a controller could read:

* ``looks``: the round trip of each pacing look (``SHOW GLOBAL STATUS`` between batches,
  what 1.0.0's controller compared with its idle baseline);
* ``probes``: the job's own probe (``heartbeat/probe.py``: ``DO 0`` on a connection of
  its own every 10 ms), each marked idle when the job rested with no batch in flight.

``--report FILE...`` prints, per file, the share of probes slower than the idle probes'
p99 x 1.25 and the looks' round trips, to set beside harm.py's neighbour p99 at each duty::

    for d in 0.02 0.1 0.3 1.0; do
      .venv/bin/python bench/harm.py --sizes 10000 --idle 20 --quiet "" --busy adaptive \\
        --no-doc --paced-wrapper ".venv/bin/python bench/duty.py --duty $d --out /tmp/duty-$d.json"
    done
    .venv/bin/python bench/duty.py --report /tmp/duty-*.json
"""

from __future__ import annotations

import argparse
import atexit
import configparser
import json
import runpy
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pymysql

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from heartbeat import adaptive, pacing, probe, store  # noqa: E402


def pin(duty: float) -> None:
    """The controller keeps ``duty`` and never calls the site busy (no probe of its own)."""

    def start(self: adaptive.Controller, others_per_s: float) -> None:
        self.duty = duty

    def decide(self: adaptive.Controller, *_: Any) -> None:
        self.duty, self.busy = duty, False

    adaptive.Controller.start = start  # type: ignore[assignment,method-assign]
    adaptive.Controller.decide = decide  # type: ignore[assignment,method-assign]


def record(ini: configparser.ConfigParser, out: Path, send_probes: bool = True) -> None:
    """Time the looks; run the job's own probe (``heartbeat.probe.Probe``, unless not
    ``send_probes``: what the probe itself costs the site); write both to ``out`` when
    the job exits."""
    writing = [0]  # batches in flight on the writer
    looks: list[tuple[float, float, int]] = []
    sender: Optional[probe.Probe] = None
    if send_probes:
        section = ini["database"]
        conn = pymysql.connect(
            unix_socket=section["socket"],
            user=section["user"],
            password=section["password"],
            database=section["name"],
            connect_timeout=10,
            read_timeout=30,
        )
        sender = probe.Probe(conn, lambda: writing[0] > 0)
        sender.active = True

    write = store.Writer._write

    def _write(self: store.Writer, statements: list[bytes]) -> None:
        writing[0] += 1
        try:
            write(self, statements)
        finally:
            writing[0] -= 1

    before_batch = pacing.Pacer.before_batch

    def _before_batch(self: pacing.Pacer, *args: Any) -> Optional[str]:
        if sender:
            sender.resting = True
        try:
            return before_batch(self, *args)
        finally:
            if sender:
                sender.resting = False

    read = pacing.Server.read

    def _read(self: pacing.Server) -> pacing.Reading:
        began = time.monotonic()
        reading = read(self)
        looks.append((began, time.monotonic() - began, writing[0]))
        return reading

    store.Writer._write = _write  # type: ignore[method-assign]
    pacing.Pacer.before_batch = _before_batch  # type: ignore[method-assign]
    pacing.Server.read = _read  # type: ignore[method-assign]

    def dump() -> None:
        probes = sender.take() if sender else []
        if sender:
            sender.close()
        out.write_text(json.dumps({"looks": looks, "probes": probes}), encoding="utf-8")

    atexit.register(dump)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def report(paths: list[str]) -> None:
    print("| file | probes | idle probes' p99 ms | slow (> p99 x 1.25) | looks | looks' p50 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        probes, looks = data["probes"], data["looks"]
        idle = percentile([took for _, took, is_idle in probes if is_idle], 0.99)
        slow = sum(took > idle * 1.25 for _, took, _ in probes) / max(1, len(probes))
        print(
            f"| {Path(path).name} | {len(probes):,} | {idle * 1000:.2f} | {slow:.1%} |"
            f" {len(looks):,} | {percentile([t for _, t, _ in looks], 0.5) * 1000:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duty", type=float)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", nargs="+", metavar="FILE")
    parser.add_argument("--no-probe", action="store_true", help="send no probes")
    args, command = parser.parse_known_args()
    if args.report:
        report(args.report)
        return
    if args.duty is None or args.out is None or "heartbeat" not in command:
        parser.error("--duty D --out FILE PYTHON -m heartbeat ..., or --report FILE...")
    job = command[command.index("heartbeat") + 1 :]
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(job[job.index("--config") + 1])
    pin(args.duty)
    record(ini, args.out, send_probes=not args.no_probe)
    sys.argv = ["heartbeat", *job]
    runpy.run_module("heartbeat", run_name="__main__")


if __name__ == "__main__":
    main()
