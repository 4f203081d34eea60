"""What a run does to the Moodle site beside it: a neighbour's latency, unpaced and paced.

    .venv/bin/python bench/harm.py                      # N = 10,000 and 100,000
    .venv/bin/python bench/harm.py --sizes 10000 --no-doc

Starts its own MariaDB (the tests' settings), and per N loads the population of
``bench/population.py`` and the neighbour's tables; then, on the same server:

1. quiet unpaced, quiet adaptive: the job alone, with every ``[pacing]`` check off, and
   with the shipped ``[pacing]`` (the adaptive pacing finds the server quiet);
2. with the neighbour running (``bench/neighbour.py``: 200 statements per second over 4
   connections, point reads and small writes on ``mdl_user``, ``mdl_sessions`` and
   ``mdl_logstore_standard_log``), in one sequence: idle (the neighbour alone), unpaced,
   idle, fixed (the fixed rate that was the default before 1.0: 1,000 rows/s, adaptive
   off), idle, adaptive (the shipped ``[pacing]``, plus ``--paced KEY=VALUE``), idle;
3. midway (``--midway``): the adaptive job starts on a quiet server and the neighbour
   joins after 40 % of the quiet run's time: the job's rate and the neighbour's
   latency over time (``docs/neighbour-midway-<N>.png``).

The ratios are to the p99 of the idle phases together (``idle (all)``); a quiet phase's
job time is compared with the quiet unpaced run's.

The neighbour's latency (from each statement's intended start, so stalls count in
full) is summed up per phase (p50, p99, max) next to the job's wall time, and drawn
over time with the job's batches marked (``docs/neighbour-<N>.png``). The table goes
into the neighbour section of ``docs/performance.md`` (``--no-doc`` to skip).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")  # files only, no display: before pyplot is imported
from matplotlib import pyplot

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import floor, neighbour, population, report, run  # noqa: E402
from heartbeat.errors import EXIT_ABORTED  # noqa: E402
from tests.mariadb_server import MariaDBServer  # noqa: E402

USER = "alt42harm"
PASSWORD = "harm-only-Pw-7"  # noqa: S105 - a throw-away server of the bench's own
PREFIX = run.PREFIX
UNPACED = dict.fromkeys(run.UNPACED, "0")
#: The default before 1.0: a fixed 1,000 rows/s, no adaptive pacing.
FIXED = {"max_rows_per_second": "1000", "max_delay_percent": "0"}


def read_samples(path: Path) -> list[tuple[float, float, str]]:
    """The neighbour's statements: (intended start, latency ms, kind)."""
    samples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        intended, latency, kind = line.split()
        samples.append((float(intended), float(latency), kind))
    return samples


@dataclass
class Phase:
    name: str
    start: float
    end: float = 0.0
    job_s: Optional[float] = None
    batches: list[tuple[float, int]] = field(default_factory=list)  # (when, students done)
    summary: str = ""  # the job's "Completed: ..." line
    latencies: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)

    def take(self, samples: list[tuple[float, float, str]]) -> None:
        """The neighbour's statements that started during this phase."""
        inside = [(lat, kind) for t, lat, kind in samples if self.start <= t < self.end]
        self.latencies = [lat for lat, _ in inside]
        for lat, kind in inside:
            self.by_kind.setdefault(kind, []).append(lat)

    def percentile(self, share: float, kind: str = "") -> float:
        ordered = sorted(self.by_kind.get(kind, []) if kind else self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class Size:
    n: int
    phases: list[Phase]
    samples: list[tuple[float, float, str]]
    origin: float
    midway: Optional[Phase] = None
    midway_samples: list[tuple[float, float, str]] = field(default_factory=list)
    neighbour_joined: float = 0.0


class Harm:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="alt42-harm-"))
        self.server = MariaDBServer(str(self.tmp / "mariadb"))

    def say(self, message: str) -> None:
        print(f"[{dt.datetime.now(dt.timezone.utc):%H:%M:%S}] {message}", flush=True)

    def ini(self, database: str, pacing: dict[str, str], batch_size: int = 0) -> Path:
        lines = [
            "[database]",
            f"socket = {self.server.socket}",
            f"name = {database}",
            f"user = {USER}",
            f"password = {PASSWORD}",
            f"prefix = {PREFIX}",
            "[heartbeat]",
            f"lock_file = {self.tmp / 'heartbeat.lock'}",
            *([f"batch_size = {batch_size}"] if batch_size else []),
            "[pacing]",
            *(f"{key} = {value}" for key, value in pacing.items()),
        ]
        path = self.tmp / f"{database}-{abs(hash((batch_size, *pacing.items())))}.ini"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        path.chmod(0o600)
        return path

    def job(self, ini: Path, *args: str, wrapper: tuple[str, ...] = ()) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ALT42_", "PYTHON"))}
        env["PYTHONPATH"] = str(ROOT)
        return subprocess.Popen(
            [*wrapper, sys.executable, "-m", "heartbeat", "--config", str(ini), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=self.tmp,
        )

    def run_phase(
        self, phase: Phase, ini: Path, wrapper: tuple[str, ...] = (), stop_in: float = 0.0
    ) -> None:
        """One run of the job; with ``stop_in``, SIGTERM after that many seconds (the run
        stops as at a shutdown: the rows of the batch in hand are committed, exit 4)."""
        proc = self.job(ini, "run", "--force", "--progress", wrapper=wrapper)
        assert proc.stdout is not None
        timer = threading.Timer(stop_in, proc.send_signal, (signal.SIGTERM,))
        if stop_in:
            timer.start()
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "] Progress: " in line:
                done = line.split("] Progress: ", 1)[1].split(" of ", 1)[0]
                phase.batches.append((time.time(), int(done.replace(",", ""))))
            elif "] Completed: " in line or "] Aborted: " in line:
                phase.summary = line.split("] ", 1)[1].strip()
        code = proc.wait()
        timer.cancel()
        phase.end = time.time()
        phase.job_s = phase.end - phase.start
        if code != 0 and not (stop_in and code == EXIT_ABORTED):
            raise RuntimeError(f"job exited {code}: " + "\n".join(lines[-10:]))

    def measure(self, n: int) -> Size:
        database = f"alt42_harm_{n}"
        self.server.create_database(database, prefix=PREFIX)
        ini_unpaced = self.ini(database, UNPACED)
        ini_fixed = self.ini(database, FIXED)
        paced = dict(item.split("=", 1) for item in self.args.paced)
        ini_paced = self.ini(database, paced, self.args.paced_batch_size)
        migrate = self.job(ini_unpaced, "migrate")
        if migrate.wait() != 0:
            raise RuntimeError("migrate failed")
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with self.server.connect(database, local_infile=True) as conn:
            conn.autocommit(False)
            population.load(conn, n, now)
            neighbour.create_tables(conn, n)
        self.say(f"N={n:,}: population and neighbour tables loaded")
        inis = {"unpaced": ini_unpaced, "fixed": ini_fixed, "adaptive": ini_paced}
        phases = [
            self.job_phase(n, database, f"quiet {name}", inis[name]) for name in self.args.quiet
        ]
        out = self.tmp / f"neighbour-{n}.txt"
        load = self.neighbour(database, n, out)
        origin = time.time()
        time.sleep(self.args.warmup)
        try:
            phases.append(self.idle_phase("idle"))
            for name in self.args.busy:
                phases.append(self.job_phase(n, database, name, inis[name]))
                phases.append(self.idle_phase(f"idle after {name}"))
        finally:
            load.send_signal(signal.SIGTERM)
            load.wait(timeout=120)
        samples = read_samples(out)
        for phase in phases:
            phase.take(samples)
        size = Size(n, phases, samples, origin)
        if self.args.midway:
            self.midway(size, database, ini_paced, phases[0].job_s or 1.0)
        self.server.connect().cursor().execute(f"DROP DATABASE `{database}`")
        return size

    def idle_phase(self, name: str) -> Phase:
        """The neighbour alone for ``--idle`` seconds."""
        phase = Phase(name, time.time())
        time.sleep(self.args.idle)
        phase.end = time.time()
        return phase

    def neighbour(
        self, database: str, n: int, out: Path, start_in: float = 0.5
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable, "-m", "bench.neighbour", "--socket", self.server.socket,
                "--database", database, "--user", USER, "--out", str(out),
                "--rate", str(self.args.rate), "--connections", str(self.args.connections),
                "--users", str(n), "--start-in", str(start_in),
            ],
            env={**os.environ, "NEIGHBOUR_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
        )  # fmt: skip

    def job_phase(self, n: int, database: str, name: str, ini: Path, stop_in: float = 0.0) -> Phase:
        """One run of the job (its results truncated after), then a gap."""
        phase = Phase(name, time.time())
        wrapper = tuple(self.args.paced_wrapper.split()) if "adaptive" in name else ()
        self.run_phase(phase, ini, wrapper, stop_in)
        self.say(f"N={n:,}: {name}: {phase.job_s:.1f} s; {phase.summary}")
        self.truncate(database)
        time.sleep(self.args.gap)
        return phase

    def midway(self, size: Size, database: str, ini: Path, quiet_s: float) -> None:
        """The adaptive job on a quiet server; the neighbour (started just before, its
        first statement timed) joins after 40 % of the quiet run's time, and stays to
        the job's end (or, with ``--midway-for S``, to S seconds after it joined: the job
        is stopped then)."""
        out = self.tmp / f"neighbour-midway-{size.n}.txt"
        joins = 0.4 * quiet_s
        load = self.neighbour(database, size.n, out, start_in=1.0 + joins)
        time.sleep(1.0)  # its Python and connections are up; the job starts now
        stop_in = joins + self.args.midway_for if self.args.midway_for else 0.0
        try:
            size.midway = self.job_phase(size.n, database, "midway", ini, stop_in)
        finally:
            load.send_signal(signal.SIGTERM)
            load.wait(timeout=120)
        size.midway_samples = read_samples(out)
        size.neighbour_joined = min((t for t, _, _ in size.midway_samples), default=0.0)
        size.midway.take(size.midway_samples)

    def truncate(self, database: str) -> None:
        with self.server.connect(database) as conn, conn.cursor() as cur:
            for table in floor.COLUMNS:
                cur.execute(f"TRUNCATE TABLE `{PREFIX}{table}`")

    def main(self) -> list[Size]:
        self.server.start()
        try:
            self.server.create_user(USER, PASSWORD, "GRANT ALL ON `alt42\\_harm%`.* TO {user}")
            with self.server.connect() as conn, conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                self.mariadb_version = str(cur.fetchone()[0])
            return [self.measure(n) for n in self.args.sizes]
        finally:
            self.server.destroy()
            shutil.rmtree(self.tmp, ignore_errors=True)


def table(sizes: list[Size]) -> str:
    lines = [
        "| N | phase | neighbour p50 ms | p99 ms | max ms | p99 / idle p99 | statements |"
        " job wall s | job / quiet unpaced | the job's summary line |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for size in sizes:
        quiet = next(
            (p.job_s for p in size.phases if p.name == "quiet unpaced" and p.job_s), float("nan")
        )
        idle_phase = idle_all(size)
        idle = idle_phase.percentile(0.99)
        for phase in [*size.phases, idle_phase, *([size.midway] if size.midway else [])]:
            p99 = phase.percentile(0.99)
            job = ratio = ""
            if phase.job_s is not None:
                job, ratio = f"{phase.job_s:.1f}", f"{phase.job_s / quiet:.2f}x"
            neighbour = "| | | | |"
            if phase.latencies:
                neighbour = (
                    f"| {phase.percentile(0.5):.2f} | {p99:.2f} |"
                    f" {max(phase.latencies):.1f} | {p99 / idle:.2f}x |"
                )
            lines.append(
                f"| {size.n:,} | {phase.name} {neighbour} {len(phase.latencies):,} | {job} |"
                f" {ratio} | {phase.summary} |"
            )
    return "\n".join(lines)


def idle_all(size: Size) -> Phase:
    """Every idle phase together (before, between and after the runs), the baseline of
    the ratios: on a shared machine the neighbour's idle p99 drifts by itself from minute
    to minute."""
    phase = Phase("idle (all)", 0.0)
    phase.latencies = [
        lat for each in size.phases if each.name.startswith("idle") for lat in each.latencies
    ]
    return phase


def repeated(size: Size) -> dict[str, list[float]]:
    """The neighbour's p99 / idle p99 of each run that ``--busy`` names more than once,
    in order: the p99 is a cliff (a run is past it or not), so one run says little."""
    idle = idle_all(size).percentile(0.99)
    ratios: dict[str, list[float]] = {}
    for phase in size.phases:
        if phase.job_s is not None and phase.latencies and not phase.name.startswith("quiet"):
            ratios.setdefault(phase.name, []).append(phase.percentile(0.99) / idle)
    return {name: values for name, values in ratios.items() if len(values) > 1}


def said_repeats(size: Size) -> str:
    """``adaptive 0.96x, 1.10x, 2.97x (median 1.10x)`` per repeated run, or ""."""
    parts = []
    for name, values in repeated(size).items():
        ratios = ", ".join(f"{value:.2f}x" for value in values)
        parts.append(f"{name} {ratios} (median {statistics.median(values):.2f}x)")
    if not parts:
        return ""
    return (
        f"\nRepeated side by side, N = {size.n:,}, the neighbour's p99 / idle p99: "
        + "; ".join(parts)
        + "."
    )


def plot(size: Size, path: Path) -> None:
    """Latency over time (log scale), the job's runs shaded, each batch a tick."""
    figure, axes = pyplot.subplots(figsize=(11, 4.2), dpi=100)
    xs = [t - size.origin for t, _, _ in size.samples]
    ys = [max(lat, 0.01) for _, lat, _ in size.samples]
    axes.scatter(xs, ys, s=2, color="#1f4e79", alpha=0.5, linewidths=0, label="neighbour statement")
    colours = {"unpaced": "#d62728", "fixed": "#9467bd", "adaptive": "#2ca02c"}
    for phase in size.phases:
        if phase.name not in colours:
            continue
        colour = colours[phase.name]
        axes.axvspan(phase.start - size.origin, phase.end - size.origin, color=colour,
                     alpha=0.08, label=f"job {phase.name} ({phase.job_s:.0f} s)")  # fmt: skip
        for moment, _ in phase.batches:
            axes.axvline(moment - size.origin, ymin=0.0, ymax=0.04, color=colour, linewidth=0.6)
    axes.set_yscale("log")
    axes.set_xlabel("seconds (ticks at the bottom: a batch committed)")
    axes.set_ylabel("neighbour latency, ms")
    axes.set_title(f"A Moodle-like neighbour while the job runs, N = {size.n:,}")
    axes.legend(loc="upper right", fontsize=8, markerscale=4)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def midway_drop(size: Size, window: float = 1.0) -> Optional[tuple[float, float, float]]:
    """The job's rate before the neighbour joined (students/s), how many seconds after it
    joined a ``window`` of the job's batches first wrote less than a quarter of that, and
    that window's rate; None if there is no such window or no midway run."""
    phase = size.midway
    if phase is None or not phase.batches or size.neighbour_joined <= phase.start:
        return None
    joined = size.neighbour_joined
    done_at = [(phase.start, 0), *phase.batches]

    def done(moment: float) -> int:
        return max((d for t, d in done_at if t <= moment), default=0)

    before = done(joined) / (joined - phase.start)
    after = 0.0
    while joined + after + window <= (phase.end or joined):
        start = joined + after
        rate = (done(start + window) - done(start)) / window
        if rate < before / 4:
            return before, after, rate
        after += 0.25
    return None


def plot_midway(size: Size, path: Path) -> None:
    """The adaptive job's rate (students per second, half-second bins) and the
    neighbour's latency, over the run the neighbour joined midway."""
    phase = size.midway
    assert phase is not None
    origin = phase.start
    figure, (rate_axes, latency_axes) = pyplot.subplots(
        2, 1, figsize=(11, 5.6), dpi=100, sharex=True
    )
    bins: dict[int, int] = {}
    previous = 0
    for moment, done in phase.batches:
        index = int((moment - origin) / 0.5)
        bins[index] = bins.get(index, 0) + done - previous
        previous = done
    last = int(((phase.end or origin) - origin) / 0.5) + 1
    xs = [i * 0.5 for i in range(last)]
    rate_axes.step(xs, [bins.get(i, 0) / 0.5 for i in range(last)], where="post",
                   color="#2ca02c", label="job: students written per second")  # fmt: skip
    rate_axes.set_ylabel("students / s")
    rate_axes.legend(loc="upper right", fontsize=8)
    latency_axes.scatter([t - origin for t, _, _ in size.midway_samples],
                         [max(lat, 0.01) for _, lat, _ in size.midway_samples],
                         s=3, color="#1f4e79", alpha=0.6, linewidths=0,
                         label="neighbour statement")  # fmt: skip
    latency_axes.set_yscale("log")
    latency_axes.set_ylabel("neighbour latency, ms")
    latency_axes.set_xlabel("seconds since the job started")
    for axes in (rate_axes, latency_axes):
        axes.axvline(size.neighbour_joined - origin, color="#d62728", linewidth=1,
                     label="the neighbour joins")  # fmt: skip
    latency_axes.legend(loc="upper right", fontsize=8, markerscale=4)
    rate_axes.set_title(f"The neighbour joins a running job, N = {size.n:,} (adaptive pacing)")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def document(sizes: list[Size], args: argparse.Namespace, mariadb: str) -> str:
    paced = ", ".join(args.paced) if args.paced else "the defaults"
    begin, end = report.neighbour_markers(args.block)
    midway = ""
    if args.midway and args.midway_for:
        midway = (
            f" Midway: the job is stopped (SIGTERM) {args.midway_for:.0f} s after the"
            " neighbour joined."
        )
    lines = [
        begin,
        f"`bench/harm.py {' '.join(args.argv)}`.",
        "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by `bench/harm.py` on"
        f" {platform.node() or 'this machine'} ({os.cpu_count()} CPUs, MariaDB {mariadb}):"
        f" the neighbour sends {args.rate:.0f} statements/s over {args.connections}"
        f" connections; adaptive = `[pacing]` {paced}; fixed = 1,000 rows/s, adaptive off"
        " (the default before 1.0); unpaced = every check off; quiet = no neighbour. The"
        " ratios are to the p99 of the idle phases together (`idle (all)`): on this shared"
        " machine the idle p99 alone drifts by 2-5x from one minute to the next. The last"
        " column compares the job's time with the quiet unpaced run's." + midway,
        "",
        table(sizes),
        *(said for s in sizes if (said := said_repeats(s))),
        *(
            f"\nMidway, N = {s.n:,}: before the neighbour joined, the job wrote"
            f" {drop[0]:,.0f} students/s; {drop[1]:.2f} s after it joined, a second of the"
            f" job's batches wrote {drop[2]:,.0f} students/s (under a quarter)."
            for s in sizes
            if (drop := midway_drop(s))
        ),
        "",
        *(f"![neighbour latency, N = {s.n:,}]({png(args, s.n)})" for s in sizes),
        *(
            f"![the neighbour joins midway, N = {s.n:,}]({png(args, s.n, 'midway')})"
            for s in sizes
            if s.midway
        ),
        end,
    ]
    return "\n".join(lines)


def png(args: argparse.Namespace, n: int, kind: str = "") -> str:
    """The plot's file name, next to the page: ``neighbour[-BLOCK][-midway]-N.png``."""
    return (
        "-".join(
            ["neighbour", *([args.block] if args.block else []), *([kind] if kind else []), str(n)]
        )
        + ".png"
    )


def write_doc(path: Path, block: str, name: str) -> None:
    """Replace the block ``name`` in ``path``; a new block goes after the section's last."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    begin, end = report.neighbour_markers(name)
    section = report.neighbour_section(text)
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        text = before + block + rest.split(end, 1)[1]
    elif section:
        at = text.index(section) + len(section)
        text = text[:at] + "\n" + block + "\n" + text[at:]
    else:
        text = text.rstrip("\n") + f"\n\n{report.NEIGHBOUR_HEADING}\n\n{block}\n"
    path.write_text(text, encoding="utf-8")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of each idle phase")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--gap", type=float, default=5.0, help="seconds between phases")
    parser.add_argument("--paced", action="append", default=[], metavar="KEY=VALUE",
                        help="a [pacing] key for the paced run (repeatable)")  # fmt: skip
    parser.add_argument("--paced-batch-size", type=int, default=0,
                        help="[heartbeat] batch_size of the paced run")  # fmt: skip
    parser.add_argument("--paced-wrapper", default="", help="command prefix of the paced run")
    parser.add_argument("--doc", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("--midway", action="store_true",
                        help="also: the neighbour joins a running adaptive job")  # fmt: skip
    parser.add_argument(
        "--midway-for",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="stop the midway job this long after the neighbour joined",
    )
    parser.add_argument(
        "--quiet", default="unpaced,adaptive", help="the runs without the neighbour"
    )
    parser.add_argument(
        "--busy",
        default="unpaced,fixed,adaptive",
        help="the runs beside the neighbour, each followed by an idle phase",
    )
    parser.add_argument(
        "--block", default="", help="the page's block to write (one per neighbour or N)"
    )
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.sizes = [int(n) for n in args.sizes.split(",")]
    for key in ("quiet", "busy"):
        names = [name for name in getattr(args, key).split(",") if name]
        unknown = sorted(set(names) - {"unpaced", "fixed", "adaptive"})
        if unknown:
            parser.error(f"--{key}: {', '.join(unknown)}: not one of unpaced, fixed, adaptive")
        setattr(args, key, names)
    harm = Harm(args)
    sizes = harm.main()
    print(table(sizes))
    for size in sizes:
        print(f"N={size.n:,} midway (before/s, seconds after joining, rate/s): {midway_drop(size)}")
    for size in sizes:
        for phase in size.phases:
            kinds = ", ".join(
                f"{kind} {phase.percentile(0.99, kind):.2f}" for kind in sorted(phase.by_kind)
            )
            print(f"N={size.n:,} {phase.name}: p99 by kind (ms): {kinds}")
    if not args.no_doc:
        doc = Path(args.doc)
        for size in sizes:
            plot(size, doc.parent / png(args, size.n))
            if size.midway:
                plot_midway(size, doc.parent / png(args, size.n, "midway"))
        write_doc(doc, document(sizes, args, harm.mariadb_version), args.block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
