"""What the job's rows cost a site over months: bytes on disk and in the binlog.

    .venv/bin/python bench/footprint.py                     # N = 1,529 and 10,000, 10 runs
    .venv/bin/python bench/footprint.py --compare 161763a   # and that job, side by side
    .venv/bin/python bench/footprint.py --sizes 1529 --runs 4 --no-doc

Starts its own MariaDB with a row-based binlog (``--log-bin --binlog-format=ROW``, as a
replicated or Galera site has it), and for each N and each job (this tree, and each
``--compare`` commit, whose own ``migrate`` makes its own tables): a fresh database with
the population of ``bench/population.py``, then ``runs`` forced runs of the job, then

* the bytes of the job's three tables: ``DATA_LENGTH + INDEX_LENGTH`` after ``ANALYZE
  TABLE`` (what ``information_schema`` says) and the tablespace files' allocated size
  (what the disk holds: page compression's punched holes show only there);
* the bytes the runs wrote to the binlog (``SHOW BINARY LOGS``, before and after);
* the job's wall time per run (median);
* the plugin's agent dashboard: its per-agent statistics query
  (``api/monitoring/agent_status_api.php``: events of the last 7 days whose routing names
  the agent) for all 22 agents, over a week of event rows (the runs' rows copied back in
  time, 48 runs a day), at the first size only (the plugin's real site: a week of its rows
  is half a million event rows; 10,000 students' would take minutes per job);

per student and run, and the steady state per student: the bytes of one student's rows
at the default schedule (48 runs a day) and retention (90 days). The table goes into
``docs/performance.md`` between its footprint markers (``--no-doc`` to skip).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import population, report  # noqa: E402
from bench.run import (  # noqa: E402
    BENCH_PASSWORD,
    BENCH_USER,
    PREFIX,
    export_commit,
    pacing_keys,
    write_job_ini,
)
from heartbeat.config import RetentionConfig  # noqa: E402
from tests.mariadb_server import MariaDBServer  # noqa: E402
from tests.plugin_readers import AGENT_STATS, AGENTS, agent_params  # noqa: E402

TABLES = ("alt42_heartbeat_log", "alt42_scenario_evaluation_log", "alt42_event_processing_log")
DETAIL_TABLES = TABLES[1:]
RUNS_PER_DAY = 48  # the default schedule, */30
OLD_RETENTION_DAYS = 90  # [retention] days before detail_days existed (0.3.0 and older)
MARK_BEGIN, MARK_END = report.FOOTPRINT_BEGIN, report.FOOTPRINT_END  # the page is report's


@dataclass
class Measured:
    """One job at one N."""

    job: str  # "this tree" or a commit
    n: int
    runs: int
    table_bytes: dict[str, int] = field(default_factory=dict)  # data + indexes
    file_bytes: dict[str, int] = field(default_factory=dict)  # allocated on disk
    binlog_bytes: int = 0
    wall_s: list[float] = field(default_factory=list)
    dashboard_s: Optional[float] = None  # measured at the first size only

    keep: dict[str, int] = field(default_factory=dict)  # table -> days, the job's defaults

    def per_student_run(self, total: int) -> float:
        return total / (self.n * self.runs)

    def size_per_student(self, day: float, keep: Optional[dict[str, int]] = None) -> float:
        """Bytes on disk one student's rows take after ``day`` days at the default
        schedule, each table kept its days (``keep``: the job's defaults)."""
        return sum(
            self.per_student_run(self.file_bytes[table])
            * RUNS_PER_DAY
            * min(day, (keep or self.keep)[table])
            for table in TABLES
        )

    @property
    def steady_state_per_student(self) -> float:
        """Bytes on disk one student's rows take at the default schedule and retention."""
        return self.size_per_student(max(self.keep.values()))


class Footprint:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="alt42-footprint-"))
        self.server = MariaDBServer(
            str(self.tmp / "mariadb"),
            extra_args=(
                "--log-bin=footprint-bin",
                "--binlog-format=ROW",
                "--server-id=1",
                f"--tmpdir={self.tmp}",  # its own: nothing else may clean its temporary tables
                *shlex.split(args.server_args),
            ),
        )
        revs = [rev for rev in (args.compare or "").split(",") if rev]
        self.jobs: dict[str, Path] = {"this tree": ROOT}
        for index, rev in enumerate(revs):
            self.jobs[rev] = export_commit(rev, self.tmp / f"job-{index}")

    def say(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def sql(self, database: Optional[str], statement: str, args: Any = None) -> list[Any]:
        with self.server.connect(database, local_infile=True) as conn, conn.cursor() as cur:
            cur.execute(statement, args)
            rows = list(cur.fetchall())
            conn.commit()
            return rows

    def cli(self, code: Path, ini: Path, *args: str) -> float:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ALT42_", "PYTHON"))}
        env["PYTHONPATH"] = str(code)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "heartbeat", "--config", str(ini), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.tmp,
            check=False,
            timeout=3600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr}")
        return time.perf_counter() - started

    @staticmethod
    def keep_days(code: Path) -> dict[str, int]:
        """Each table's retention at the job's defaults."""
        if "detail_days" not in (code / "heartbeat" / "config.py").read_text():
            return dict.fromkeys(TABLES, OLD_RETENTION_DAYS)
        defaults = RetentionConfig()
        return {
            table: defaults.detail_days if table in DETAIL_TABLES else defaults.days
            for table in TABLES
        }

    def binlog_bytes(self) -> int:
        return sum(int(row[1]) for row in self.sql(None, "SHOW BINARY LOGS"))

    def measure(self, job: str, code: Path, n: int, number: int) -> Measured:
        database = f"alt42_fp_{number}"
        self.server.create_database(database, prefix=PREFIX)
        self.sql(None, f"GRANT ALL ON `{database}`.* TO '{BENCH_USER}'@'localhost'")
        ini = write_job_ini(
            self.tmp / f"{database}.ini", self.server.socket, database, pacing_keys(code)
        )
        self.cli(code, ini, "migrate")
        with self.server.connect(database, local_infile=True) as conn:
            conn.autocommit(False)
            now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            population.load(conn, n, now)
        result = Measured(job, n, self.args.runs, keep=self.keep_days(code))
        self.sql(None, "FLUSH BINARY LOGS")
        before = self.binlog_bytes()
        for _ in range(self.args.runs):
            result.wall_s.append(self.cli(code, ini, "run", "--force"))
        self.sql(None, "FLUSH BINARY LOGS")
        result.binlog_bytes = self.binlog_bytes() - before
        for table in TABLES:
            self.sql(database, f"ANALYZE TABLE {PREFIX}{table}")
            [(data, index)] = self.sql(
                None,
                "SELECT DATA_LENGTH, INDEX_LENGTH FROM information_schema.TABLES"
                " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                (database, PREFIX + table),
            )
            result.table_bytes[table] = int(data) + int(index)
        # FOR EXPORT writes the tables' dirty pages to their files (plain FLUSH TABLES
        # does not): only then do the files hold what the disk will (page compression
        # punches its holes when a page is written).
        with self.server.connect(database) as conn, conn.cursor() as cur:
            cur.execute("FLUSH TABLES " + ", ".join(PREFIX + t for t in TABLES) + " FOR EXPORT")
            for table in TABLES:
                tablespace = self.server.datadir / database / f"{PREFIX}{table}.ibd"
                result.file_bytes[table] = tablespace.stat().st_blocks * 512
            cur.execute("UNLOCK TABLES")
        if n == self.args.sizes[0] and not self.args.no_dashboard:  # 0.5 M rows a job at 1,529
            result.dashboard_s = self.dashboard(database)
        self.sql(None, f"DROP DATABASE `{database}`")
        self.say(
            f"{job} N={n:,}: {result.per_student_run(sum(result.file_bytes.values())):,.0f}"
            f" B on disk, {result.per_student_run(result.binlog_bytes):,.0f} B binlog per"
            f" student-run; run {statistics.median(result.wall_s):.2f} s"
        )
        return result

    def dashboard(self, database: str) -> float:
        """The plugin's per-agent statistics, all 22 agents, over a week of event rows:
        the runs' rows copied back in time to fill 7 days at 48 runs a day."""
        table = f"{PREFIX}alt42_event_processing_log"
        columns = (
            "event_id, event_type, student_id, scenarios_evaluated, scenario_results,"
            " routing_result, priority, status, processed_at, run_id"
        )
        span = self.args.runs * 30  # minutes the runs stand for at */30
        for copy in range(1, 7 * RUNS_PER_DAY // self.args.runs):
            self.sql(
                database,
                f"INSERT INTO {table} ({columns}, created_at) SELECT {columns},"
                f" created_at - INTERVAL {copy * span} MINUTE FROM {table}"
                f" WHERE created_at > UTC_TIMESTAMP() - INTERVAL {span} MINUTE",
            )
        started = time.perf_counter()
        for agent in AGENTS:
            self.sql(database, AGENT_STATS.format(table=table), agent_params(agent))
        return time.perf_counter() - started

    def main(self) -> list[Measured]:
        self.server.start()
        self.sql(None, f"CREATE USER '{BENCH_USER}'@'localhost' IDENTIFIED BY '{BENCH_PASSWORD}'")
        try:
            results = []
            for n in self.args.sizes:
                for job, code in self.jobs.items():
                    results.append(self.measure(job, code, n, len(results)))
            return results
        finally:
            self.server.destroy()
            shutil.rmtree(self.tmp, ignore_errors=True)


def _kb(value: float) -> str:
    return f"{value / 1000:,.2f}"


def table(results: list[Measured]) -> str:
    rows = [
        "| job | N | runs | on disk per student-run (kB): data + indexes / files | of which"
        " evaluation / event / run table (files, kB) | binlog per student-run (kB) |"
        " steady state per student, 48 runs/day, the job's default retention (MB) |"
        " run (s, median) |"
        " agent dashboard, 22 agents, 7 days (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        files = [r.per_student_run(r.file_bytes[t]) for t in TABLES]
        rows.append(
            f"| {r.job} | {r.n:,} | {r.runs} |"
            f" {_kb(r.per_student_run(sum(r.table_bytes.values())))} /"
            f" {_kb(r.per_student_run(sum(r.file_bytes.values())))} |"
            f" {_kb(files[1])} / {_kb(files[2])} / {_kb(files[0])} |"
            f" {_kb(r.per_student_run(r.binlog_bytes))} |"
            f" {r.steady_state_per_student / 1e6:,.1f} |"
            f" {statistics.median(r.wall_s):.2f} |"
            f" {'-' if r.dashboard_s is None else f'{r.dashboard_s:.2f}'} |"
        )
    return "\n".join(rows)


PLOT_DAYS = 90
PLOT_COLOURS = ("#c0392b", "#2471a3", "#27ae60", "#8e44ad", "#d68910")


def curves(results: list[Measured]) -> list[tuple[str, list[float]]]:
    """A site's total size (GB) each day of its first 90, at the first size measured:
    each job at its default retention, and this tree kept as a site that set
    ``days = 90`` alone keeps it (every row 90 days)."""
    site = [r for r in results if r.n == results[0].n]
    lines = []
    for r in site:
        settings = [(f"{r.job}, its defaults", r.keep)]
        if r.job == "this tree":
            settings.append((f"{r.job}, days = 90 alone", dict.fromkeys(TABLES, 90)))
        for label, keep in settings:
            sizes = [r.n * r.size_per_student(day, keep) / 1e9 for day in range(PLOT_DAYS + 1)]
            lines.append((label, sizes))
    return lines


def svg(results: list[Measured]) -> str:
    """The plot of ``curves`` as a small SVG (no plotting library: a few lines)."""
    lines = curves(results)
    width, height, left, bottom, top = 640, 320, 60, 40, 20
    peak = max(max(values) for _, values in lines) * 1.1 or 1

    def x(day: float) -> float:
        return left + day / PLOT_DAYS * (width - left - 20)

    def y(gb: float) -> float:
        return height - bottom - gb / peak * (height - bottom - top)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        ' font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{left}" y1="{y(0)}" x2="{x(PLOT_DAYS)}" y2="{y(0)}" stroke="black"/>',
        f'<line x1="{left}" y1="{y(0)}" x2="{left}" y2="{top}" stroke="black"/>',
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">days since the first'
        f" run (N = {results[0].n:,} students, */30)</text>",
        f'<text x="12" y="{top + 10}">GB</text>',
    ]
    for day in range(0, PLOT_DAYS + 1, 15):
        out.append(f'<text x="{x(day)}" y="{y(0) + 14}" text-anchor="middle">{day}</text>')
    for step in range(5):
        gb = peak / 1.1 * step / 4
        out.append(f'<text x="{left - 6}" y="{y(gb) + 4}" text-anchor="end">{gb:.1f}</text>')
    for index, (label, values) in enumerate(lines):
        colour = PLOT_COLOURS[index % len(PLOT_COLOURS)]
        points = " ".join(f"{x(day):.1f},{y(gb):.1f}" for day, gb in enumerate(values))
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out.append(
            f'<text x="{left + 10}" y="{top + 14 * (index + 1)}" fill="{colour}">{label}:'
            f" {values[-1]:.1f} GB at day {PLOT_DAYS}</text>"
        )
    return "\n".join([*out, "</svg>"]) + "\n"


def write_doc(path: Path, block: str) -> None:
    text = path.read_text(encoding="utf-8")
    if MARK_BEGIN in text:
        head, rest = text.split(MARK_BEGIN, 1)
        text = head + block + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1529,10000", type=lambda t: [int(x) for x in t.split(",") if x]
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--compare", default="", metavar="REV[,REV]")
    parser.add_argument("--doc", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument(
        "--no-dashboard", action="store_true", help="skip the plugin's dashboard (large N)"
    )
    parser.add_argument(
        "--server-args", default="", help="extra mariadbd arguments (e.g. --log-bin-compress)"
    )
    args = parser.parse_args(argv)
    results = Footprint(args).main()
    text = table(results)
    print(text)
    if not args.no_doc:
        block = (
            f"{MARK_BEGIN}\n## Footprint over months (`bench/footprint.py`)\n\n"
            f"`bench/footprint.py --sizes {','.join(map(str, args.sizes))} --runs {args.runs}"
            f"{' --compare ' + args.compare if args.compare else ''}`, one run, the jobs"
            " side by side on one private MariaDB with a row-based binlog; the population"
            " of `bench/population.py`; the job's own tables as its `migrate` made them.\n\n"
            f"{text}\n\nA site's total size over its first {PLOT_DAYS} days, from these"
            " figures (the first size measured; each job at its default retention):\n\n"
            f"![size over {PLOT_DAYS} days](footprint-90-days.svg)\n{MARK_END}\n"
        )
        write_doc(Path(args.doc), block)
        plot = Path(args.doc).parent / "footprint-90-days.svg"
        plot.write_text(svg(results), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
