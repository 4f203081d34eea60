"""The heartbeat benchmark: job vs. floor vs. naive shape, statements and memory.

    .venv/bin/python bench/run.py                       # 1k, 10k, 100k; naive at 1k, 10k
    .venv/bin/python bench/run.py --sizes 1000,10000    # a quick look
    .venv/bin/python bench/run.py --million             # adds N = 1,000,000

Starts its own MariaDB (``tests/mariadb_server.py``, the same settings as the tests),
and for each N: creates the ALT42 schema, runs ``alt42-heartbeat migrate``, loads a
population of N active students (``bench/population.py``), then measures

1. the job: ``python -m heartbeat --config <ini> run --json`` as a whole process, wall
   time and peak RSS (``os.wait4`` rusage of the child);
2. the floor: the same rows (read back out of the job's tables) bulk-inserted into an
   identically migrated second database (``bench/floor.py``);
3. the naive shape at the ``--naive-sizes`` (``bench/naive.py``);
4. SQL statements of the job run, from ``SHOW GLOBAL STATUS`` deltas (the bench owns
   the server, so the global counters are the job's);
5. with ``--compare REV[,REV]``: the job as it was at each commit (its ``heartbeat/`` package
   from ``git archive``), run in turns with the current job on the same population, so
   that the two are measured side by side on the same busy machine.

Prints a table and writes ``docs/performance.md`` (``--doc``, ``--no-doc``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import floor, naive, population, report  # noqa: E402
from tests.mariadb_server import MariaDBServer  # noqa: E402

BENCH_USER = "alt42bench"
BENCH_PASSWORD = "bench-only-Pw-7"  # noqa: S105 - a throw-away server of the bench's own
PREFIX = "mdl_"
COUNTED = ("Com_select", "Com_insert", "Com_update", "Com_commit", "Com_set_option")
DEFAULT_BATCH = 1000
UNPACED = (
    "max_threads_running",
    "max_flow_control_percent",
    "max_recv_queue",
    "max_rows_per_second",
    "max_bytes_per_second",
    "max_delay_percent",
)
GNU_TIME = "/usr/bin/time"  # Debian package "time" (scripts/bootstrap installs it)


@dataclass
class Result:
    n: int
    population_s: float = 0.0
    population_rows: int = 0
    job_s: float = 0.0
    job_rss_mb: float = 0.0
    job_exit: int = 0
    processed: int = 0
    statements: dict[str, int] = field(default_factory=dict)
    floor_insert_s: float = 0.0
    floor_load_s: float = 0.0
    floor_rows: int = 0
    floor_bytes: int = 0
    # --compare: per earlier commit, its fastest (seconds, peak RSS MB, statements)
    baselines: dict[str, tuple[float, float, dict[str, int]]] = field(default_factory=dict)
    naive_s: Optional[float] = None
    naive_statements: Optional[int] = None
    coverage: dict[str, int] = field(default_factory=dict)
    no_rule: int = 0
    routes: dict[str, int] = field(default_factory=dict)

    @property
    def floor_s(self) -> float:
        return min(self.floor_insert_s, self.floor_load_s)

    @property
    def job_over_floor(self) -> float:
        return self.job_s / self.floor_s if self.floor_s else math.inf

    @property
    def job_over_insert_floor(self) -> float:
        return self.job_s / self.floor_insert_s if self.floor_insert_s else math.inf

    @property
    def naive_over_job(self) -> Optional[float]:
        return None if self.naive_s is None else self.naive_s / self.job_s


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="alt42-bench-"))
        extra = tuple(shlex.split(args.server_args)) if args.server_args else ()
        self.server = MariaDBServer(str(self.tmp / "mariadb"), extra_args=extra)
        self.warned_rss = False
        self.baselines = {
            rev: export_commit(rev, self.tmp / f"baseline-{index}")
            for index, rev in enumerate(compared(args))
        }

    # ------------------------------------------------------------------ helpers
    def root(self, database: Optional[str] = None, autocommit: bool = True) -> Any:
        """A root connection (``local_infile`` on) to ``database``."""
        conn = self.server.connect(database, local_infile=True)
        if not autocommit:
            conn.autocommit(False)
        return conn

    def status(self) -> dict[str, int]:
        with self.root() as conn, conn.cursor() as cur:
            cur.execute(
                "SHOW GLOBAL STATUS WHERE Variable_name LIKE 'Com\\_%'"
                " OR Variable_name = 'Questions'"
            )
            return {str(name): int(value) for name, value in cur.fetchall()}

    def write_ini(self, database: str, code: Path = ROOT) -> Path:
        """The job's INI; unpaced (the bench measures how fast the job can go; the
        neighbour bench, bench/harm.py, measures pacing) where the job of ``code`` knows
        [pacing] (a ``--compare`` commit before it refuses the section; one after it
        would otherwise spread its writes at the shipped default)."""
        path = self.tmp / f"{database}{'-baseline' if code != ROOT else ''}.ini"
        extra = [f"batch_size = {self.args.batch_size}"] if self.args.batch_size else []
        return write_job_ini(path, self.server.socket, database, pacing_keys(code), extra=extra)

    def cli(
        self, ini: Path, *args: str, wrapper: tuple[str, ...] = (), code: Path = ROOT
    ) -> tuple[int, float, float, str, str]:
        """Run the CLI as a process: (exit code, wall s, peak RSS MB, stdout, stderr).

        Peak RSS comes from GNU ``time`` (``/usr/bin/time -f %M``), which forks the job
        from its own tiny process: ``ru_maxrss`` of a child forked straight from this
        bench would include the bench's own resident memory at fork time (Linux keeps
        the high-water mark of the address space the child was forked or vforked from).
        Without ``/usr/bin/time`` it falls back to ``os.wait4`` and says so.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ALT42_", "PYTHON"))}
        env["PYTHONPATH"] = str(code)
        out_path, err_path = self.tmp / "cli.out", self.tmp / "cli.err"
        rss_path = self.tmp / "cli.rss"
        timer: tuple[str, ...] = ()
        if Path(GNU_TIME).exists():
            timer = (GNU_TIME, "-f", "%M", "-o", str(rss_path))
        elif not self.warned_rss:
            self.say("no /usr/bin/time: peak RSS from os.wait4 includes the bench's own RSS")
            self.warned_rss = True
        command = [*timer, *wrapper, sys.executable, "-m", "heartbeat", "--config", str(ini)]
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(
                [*command, *args], stdout=out, stderr=err, env=env, cwd=self.tmp
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
        rss_kib = float(usage.ru_maxrss)  # KiB on Linux
        if timer:
            rss_kib = float(rss_path.read_text(encoding="utf-8").split()[-1])
        return (
            proc.returncode,
            wall,
            rss_kib / 1024,
            out_path.read_text(encoding="utf-8", errors="replace"),
            err_path.read_text(encoding="utf-8", errors="replace"),
        )

    def fresh_database(self, name: str) -> Path:
        self.server.create_database(name, prefix=PREFIX)
        ini = self.write_ini(name)
        code, _, _, out, err = self.cli(ini, "migrate")
        if code != 0:
            raise RuntimeError(f"migrate failed ({code}): {out}{err}")
        return ini

    def drop(self, name: str) -> None:
        with self.root() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")

    def truncate_logs(self, name: str) -> None:
        with self.root(name) as conn, conn.cursor() as cur:
            for table in floor.COLUMNS:
                cur.execute(f"TRUNCATE TABLE `{PREFIX}{table}`")

    # ------------------------------------------------------------------ one size
    def measure(self, n: int) -> Result:
        """Everything for one N: population, then job and floor in turns, then naive."""
        result = Result(n)
        job_db, floor_db = f"alt42_bench_{n}", f"alt42_bench_{n}_floor"
        job_ini = self.fresh_database(job_db)
        self.fresh_database(floor_db)
        with self.root(job_db, autocommit=False) as conn:
            pop = population.load(conn, n, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
        result.population_s = pop.seconds
        result.population_rows = sum(pop.rows.values())
        self.say(f"N={n:,}: population {result.population_rows:,} rows in {pop.seconds:.1f} s")
        result.floor_insert_s = result.floor_load_s = result.job_s = math.inf
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for attempt in range(self.args.repeat):
            # In turns, the order reversed every other attempt (ABC, CBA), each run on
            # empty log tables after the server wrote out the one before (settle).
            turns = [*self.baselines, ""]
            for rev in turns if attempt % 2 == 0 else turns[::-1]:
                self.truncate_logs(job_db)
                self.measure_job(result, job_ini, baseline=rev)
                if not rev and not rows:  # the floor writes this job's rows
                    with self.root(job_db) as conn:
                        rows = floor.read_rows(conn, PREFIX)
                    self.coverage(result, rows)
            self.measure_floor(result, floor_db, rows)
        del rows
        if n in self.args.naive_sizes:
            self.truncate_logs(job_db)
            self.measure_naive(result, job_db)
        if not self.args.keep:
            self.drop(job_db)
            self.drop(floor_db)
        return result

    def measure_job(self, result: Result, ini: Path, baseline: str = "") -> None:
        """One job run as a process; keeps the fastest of the repeats. ``baseline``: the
        job of that ``--compare`` commit instead of this one."""
        wrapper = tuple(shlex.split(self.args.job_wrapper)) if self.args.job_wrapper else ()
        self.settle()
        overhead = self.status_overhead()
        before = self.status()
        code_dir = self.baselines[baseline] if baseline else ROOT
        if baseline:
            ini = self.write_ini(ini.stem, code_dir)
        code, wall, rss, out, err = self.cli(ini, "run", "--json", wrapper=wrapper, code=code_dir)
        after = self.status()
        if code != 0:
            raise RuntimeError(f"job failed ({code}): {out}{err}")
        summary = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
        processed = int(summary["students_processed"])
        if processed != result.n:
            raise RuntimeError(f"job processed {processed} students, expected {result.n}")
        who = f"job at {baseline}" if baseline else "job"
        self.say(f"N={result.n:,}: {who} {wall:.2f} s, peak RSS {rss:.1f} MB")
        deltas = {key: after[key] - before[key] - overhead.get(key, 0) for key in after}
        if baseline:
            best = result.baselines.get(baseline)
            if best is None or wall < best[0]:
                kept = {k: v for k, v in deltas.items() if v > 0}
                result.baselines[baseline] = (wall, rss, kept)
            return
        result.processed = processed
        if wall < result.job_s:
            result.job_s, result.job_rss_mb = wall, rss
            result.statements = {key: value for key, value in deltas.items() if value > 0}

    def measure_floor(
        self, result: Result, database: str, rows: dict[str, list[tuple[Any, ...]]]
    ) -> None:
        """Both bulk paths into the second database; keeps the fastest of the repeats."""
        with self.root(database, autocommit=False) as conn:
            times = floor.measure(conn, rows, PREFIX)
        result.floor_insert_s = min(result.floor_insert_s, times.insert_s)
        result.floor_load_s = min(result.floor_load_s, times.load_s)
        result.floor_rows, result.floor_bytes = times.rows, times.payload_bytes
        self.say(
            f"N={result.n:,}: floor {times.rows:,} rows ({times.payload_bytes / 1e6:.0f} MB):"
            f" INSERT {times.insert_s:.2f} s, LOAD DATA {times.load_s:.2f} s"
        )

    def measure_naive(self, result: Result, database: str) -> None:
        before = self.status()
        with self.server.connect(database) as conn:  # autocommit, like the PHP job
            started = time.perf_counter()
            processed = naive.naive_run(conn, PREFIX)
            result.naive_s = time.perf_counter() - started
        after = self.status()
        result.naive_statements = after["Questions"] - before["Questions"]
        self.say(f"N={result.n:,}: naive {result.naive_s:.2f} s ({processed} students)")

    def settle(self, timeout_s: float = 120.0) -> None:
        """Let the server write out the previous run's dirty pages first, so that no job
        run pays for the one before it (up to ``timeout_s``)."""
        with self.root() as conn, conn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.innodb_max_dirty_pages_pct")
            saved = float(cur.fetchone()[0])
            cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = 0")
            try:
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
                    if int(cur.fetchone()[1]) < 100:
                        break
                    time.sleep(0.5)
            finally:
                cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = %s", (saved,))

    def status_overhead(self) -> dict[str, int]:
        """What two back-to-back status reads add to the counters by themselves."""
        first, second = self.status(), self.status()
        return {key: second[key] - first[key] for key in second}

    def coverage(self, result: Result, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        """Which rules matched for how many students, and routes: proves the mix."""
        for row in rows["alt42_event_processing_log"]:
            results = json.loads(row[4])
            matched = [m["rule_id"] for r in results.values() for m in r["matched_rules"]]
            for rule_id in matched:
                result.coverage[rule_id] = result.coverage.get(rule_id, 0) + 1
            if not matched:
                result.no_rule += 1
            strategy = json.loads(row[5])["strategy"]
            result.routes[strategy] = result.routes.get(strategy, 0) + 1

    def say(self, message: str) -> None:
        print(f"[{dt.datetime.now(dt.timezone.utc):%H:%M:%S}] {message}", flush=True)

    # ------------------------------------------------------------------ all
    def main(self) -> list[Result]:
        self.server.start()
        try:
            self.server.create_user(
                BENCH_USER, BENCH_PASSWORD, "GRANT ALL ON `alt42\\_bench%`.* TO {user}"
            )
            with self.root() as conn, conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                self.mariadb_version = str(cur.fetchone()[0])
            self.pymysql_version = importlib.metadata.version("PyMySQL")
            self.load_before = os.getloadavg()
            self.started = dt.datetime.now(dt.timezone.utc)
            results = [self.measure(n) for n in self.args.sizes]
            self.load_after = os.getloadavg()
            self.finished = dt.datetime.now(dt.timezone.utc)
            return results
        finally:
            if not self.args.keep:
                self.server.destroy()
                shutil.rmtree(self.tmp, ignore_errors=True)
            else:
                self.say(f"kept server: socket {self.server.socket}, configs in {self.tmp}")


# ---------------------------------------------------------------------- reporting


def pacing_keys(code: Path) -> tuple[str, ...]:
    """The [pacing] keys of ``UNPACED`` the job in ``code`` knows (the benches turn them
    off; an older commit's job refuses a key it does not know)."""
    config = (code / "heartbeat" / "config.py").read_text()
    return tuple(key for key in UNPACED if f'"{key}"' in config)


def write_job_ini(
    path: Path, socket: str, database: str, unpaced: Sequence[str], extra: Sequence[str] = ()
) -> Path:
    """A job's INI for a bench database (mode 0600: it holds the password), with the
    [pacing] keys ``unpaced`` turned off; ``extra`` [heartbeat] lines."""
    lines = [
        "[database]",
        f"socket = {socket}",
        f"name = {database}",
        f"user = {BENCH_USER}",
        f"password = {BENCH_PASSWORD}",
        f"prefix = {PREFIX}",
        "[heartbeat]",
        f"lock_file = {path.parent / 'heartbeat.lock'}",
        *extra,
    ]
    if unpaced:
        lines += ["[pacing]", *(f"{key} = 0" for key in unpaced)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def _f(value: Optional[float], digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def batches(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def table(results: list[Result], batch_size: int) -> str:
    head = (
        "| N | job s | floor s | job/floor | INSERT floor s | job/INSERT floor | naive s"
        " | naive/job | peak RSS MB | statements | batches | statements/batch |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in results:
        total = r.statements.get("Questions", 0)
        b = batches(r.n, batch_size)
        lines.append(
            f"| {r.n:,} | {r.job_s:.2f} | {r.floor_s:.2f} | {r.job_over_floor:.2f} |"
            f" {r.floor_insert_s:.2f} | {r.job_over_insert_floor:.2f} |"
            f" {_f(r.naive_s)} | {_f(r.naive_over_job, 1)} | {r.job_rss_mb:.1f} |"
            f" {total} | {b} | {total / b:.1f} |"
        )
    return "\n".join(lines)


def statements_table(results: list[Result]) -> str:
    keys = sorted({k for r in results for k in r.statements if k != "Questions"})
    lines = ["| N | " + " | ".join(keys) + " | all (Questions) |", "|" + "---|" * (len(keys) + 2)]
    for r in results:
        cells = " | ".join(str(r.statements.get(k, 0)) for k in keys)
        lines.append(f"| {r.n:,} | {cells} | {r.statements.get('Questions', 0)} |")
    return "\n".join(lines)


def floor_table(results: list[Result]) -> str:
    lines = [
        "| N | rows written | payload MB | multi-row INSERT s | LOAD DATA s"
        " | population rows | population s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.n:,} | {r.floor_rows:,} | {r.floor_bytes / 1e6:.0f} | {r.floor_insert_s:.2f} |"
            f" {r.floor_load_s:.2f} | {r.population_rows:,} | {r.population_s:.1f} |"
        )
    return "\n".join(lines)


def coverage_table(results: list[Result]) -> str:
    r = results[0]
    keys = sorted(r.coverage)
    lines = ["| rule | students | share |", "|---|---|---|"]
    for key in keys:
        lines.append(f"| {key} | {r.coverage[key]:,} | {r.coverage[key] / r.n:.1%} |")
    lines.append(f"| (no rule at all) | {r.no_rule:,} | {r.no_rule / r.n:.1%} |")
    for strategy, count in sorted(r.routes.items()):
        lines.append(f"| route {strategy} | {count:,} | {count / r.n:.1%} |")
    return f"At N = {r.n:,}:\n\n" + "\n".join(lines)


#: The commit before the architecture issue, whose job the issue's speed limit is from.
ARCHITECTURE_BASE = "52b8868"


def targets(results: list[Result]) -> list[tuple[str, str, bool]]:
    by_n = {r.n: r for r in results}
    out: list[tuple[str, str, bool]] = []
    big = by_n.get(100_000) or results[-1]
    out.append(
        (
            f"job / floor <= 1.5 at N = {big.n:,}",
            f"{big.job_over_floor:.2f} ({big.job_s:.2f} s / {big.floor_s:.2f} s)",
            big.job_over_floor <= 1.5,
        )
    )
    out.append(
        (
            f"(for reference) job / multi-row INSERT floor at N = {big.n:,}",
            f"{big.job_over_insert_floor:.2f} ({big.job_s:.2f} s / {big.floor_insert_s:.2f} s)",
            big.job_over_insert_floor <= 1.5,
        )
    )
    ten = by_n.get(10_000)
    if ten and ten.naive_s is not None:
        ratio = ten.naive_over_job or 0.0
        out.append(
            (
                "naive / job >= 30 at N = 10,000",
                f"{ratio:.1f} ({ten.naive_s:.2f} s / {ten.job_s:.2f} s)",
                ratio >= 30,
            )
        )
        ceiling = ten.naive_s / ten.floor_insert_s
        out.append(
            (
                "(for reference) naive / multi-row INSERT floor at N = 10,000: the most any"
                " job that sends these rows as INSERTs could reach",
                f"{ceiling:.1f} ({ten.naive_s:.2f} s / {ten.floor_insert_s:.2f} s)",
                ceiling >= 30,
            )
        )
    if ten:
        out.append(
            (
                f"peak RSS <= 150 MB and <= 1.5x N = 10,000 at N = {big.n:,}",
                f"{big.job_rss_mb:.1f} MB vs {ten.job_rss_mb:.1f} MB"
                f" ({big.job_rss_mb / ten.job_rss_mb:.2f}x)",
                big.job_rss_mb <= 150 and big.job_rss_mb <= 1.5 * ten.job_rss_mb,
            )
        )
    if ARCHITECTURE_BASE in big.baselines:  # --compare 52b8868: the architecture issue's
        seconds = big.baselines[ARCHITECTURE_BASE][0]
        out.append(
            (
                f"job <= 1.25x the job at `{ARCHITECTURE_BASE}` at N = {big.n:,}",
                f"{big.job_s / seconds:.2f} ({big.job_s:.2f} s / {seconds:.2f} s)",
                big.job_s <= 1.25 * seconds,
            )
        )
    return out


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB",
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def export_commit(rev: str, into: Path) -> Path:
    """The ``heartbeat`` package of commit ``rev``, unpacked into ``into`` (an import root)."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "heartbeat"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True, timeout=60)
    return into


def compared(args: argparse.Namespace) -> list[str]:
    """The commits of ``--compare REV[,REV...]``, in order."""
    return [rev for rev in (args.compare or "").split(",") if rev]


def comparison_table(results: list[Result], revs: list[str]) -> str:
    """The job now and at each of ``revs``, measured in turns in this run."""
    lines = [
        "| N | job | seconds | this job / that | peak RSS MB | statements |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        for rev in revs:
            if rev not in r.baselines:
                continue
            seconds, rss, statements = r.baselines[rev]
            lines.append(
                f"| {r.n:,} | at `{rev}` | {seconds:.2f} | {r.job_s / seconds:.2f} | {rss:.1f} |"
                f" {sum(statements.get(k, 0) for k in COUNTED)} |"
            )
        if r.baselines:
            lines.append(
                f"| {r.n:,} | this one | {r.job_s:.2f} | 1.00 | {r.job_rss_mb:.1f} |"
                f" {sum(r.statements.get(k, 0) for k in COUNTED)} |"
            )
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated N")
    parser.add_argument("--million", action="store_true", help="also N = 1,000,000")
    parser.add_argument("--naive-sizes", default="1000,10000", help="N that also run naive")
    parser.add_argument(
        "--batch-size", type=int, default=0, help="job batch_size (default: the job's)"
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="job and floor runs per N (best kept)"
    )
    parser.add_argument(
        "--server-args",
        # Production durability (MariaDB's default): the tests' server relaxes it for
        # speed, but a row-by-row job pays one log flush per autocommitted row in real
        # life, and the comparison should show what a Moodle site would see.
        default="--innodb-flush-log-at-trx-commit=1",
        help="extra mariadbd arguments (default: %(default)s)",
    )
    parser.add_argument("--job-wrapper", default="", help="command prefix for the job (profilers)")
    parser.add_argument(
        "--compare",
        default="",
        metavar="REV[,REV]",
        help="also run the job of these commits, in turns",
    )
    parser.add_argument("--keep", action="store_true", help="keep the server and databases")
    parser.add_argument("--doc", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.million and 1_000_000 not in args.sizes:
        args.sizes.append(1_000_000)
    args.naive_sizes = {int(s) for s in args.naive_sizes.split(",") if s}
    bench = Bench(args)
    results = bench.main()
    batch_size = args.batch_size or DEFAULT_BATCH
    print()
    print(table(results, batch_size))
    print()
    print(statements_table(results))
    print()
    print(floor_table(results))
    print()
    print(coverage_table(results))
    if args.compare:
        print()
        print(comparison_table(results, compared(args)))
    print()
    for name, value, met in targets(results):
        print(f"{'MET ' if met else 'MISSED'} {name}: {value}")
    if not args.no_doc:
        report.write(Path(args.doc), bench, results, batch_size)
        print(f"\nwrote {args.doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
