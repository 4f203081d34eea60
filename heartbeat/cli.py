"""The ``alt42-heartbeat`` command line: parse, dispatch, and turn errors into exit codes.

Lines go through ``logging`` (``heartbeat.output``): ``[YYYY-MM-DD HH:MM:SS] message``
(UTC) on stdout, which cron appends to the log; each error is one line on stderr (a
traceback only with ``--verbose``). Exit codes: 0 success or skipped, 1 some students
failed, 2 configuration or usage error, 3 database error, 4 aborted (deadline or
signal), 5 internal error. ``status`` follows the monitoring-plugin convention (0-3).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import stat
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, Optional, TextIO

from heartbeat import (
    __version__,
    coordinate,
    daily,
    db,
    explain,
    hooks,
    output,
    pacing,
    progress,
    report,
    retention,
    rules,
    schema,
    sizes,
    status,
    students,
)
from heartbeat.config import Config, load_config
from heartbeat.errors import (
    EXIT_ABORTED,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PARTIAL,
    ConfigError,
    DatabaseError,
    HeartbeatError,
)
from heartbeat.run import RunSummary, execute, utc_now

log = logging.getLogger(__name__)

STATUS_TIMEOUT_S = 10


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line (its default also prints the whole usage)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="alt42-heartbeat",
        description="The ALT42 student heartbeat job for Moodle.",
        epilog="Exit codes: 0 ok or skipped, 1 some students failed, 2 configuration or"
        " usage error, 3 database error, 4 aborted by its deadline or a signal.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="INI file (default: $ALT42_HEARTBEAT_CONFIG, else the heartbeat.ini beside this"
        " release's venv, which the role writes, else /etc/alt42/heartbeat.ini)",
    )
    parser.add_argument(
        "--log-file",
        metavar="FILE",
        help="append every line to FILE (the role's cron line); if it cannot be opened the"
        " command still runs, its lines go to syslog and stderr, and it exits 1",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    run = commands.add_parser("run", help="process every active student once")
    run.add_argument("--dry-run", action="store_true", help="read and evaluate, write nothing")
    run.add_argument("--json", action="store_true", help="print one JSON summary only")
    run.add_argument("--verbose", action="store_true", help="one line per student; tracebacks")
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress after each batch (default: on a terminal only, one line redrawn;"
        " --progress without a terminal: one log line per batch)",
    )
    run.add_argument(
        "--explain",
        action="append",
        metavar="STUDENT_ID",
        help="with --dry-run: say for this student (repeatable) what the job read and why"
        " each rule matched or not; nothing else is run",
    )
    run.add_argument(
        "--format",
        choices=("text", "json"),
        help="how --explain prints (default: text)",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="run even if this schedule slot already ran (manual re-run); the locks still hold",
    )

    migrate = commands.add_parser(
        "migrate", help="create or extend the tables the job writes (idempotent)"
    )
    migrate.add_argument(
        "--dry-run", action="store_true", help="say what would change, change nothing"
    )
    migrate.add_argument(
        "--compress",
        action="store_true",
        help="also compress the per-student tables made before 0.4.0 (online, one at a"
        " time; with --dry-run: what it would rebuild)",
    )
    check = commands.add_parser("check", help="check config, database, tables and rule book")
    check.add_argument(
        "--config-only",
        action="store_true",
        help="check the files only, not the database (the role validates the INI with this)",
    )

    rep = commands.add_parser(
        "report", help="recent runs, daily aggregates and what the job's tables cost"
    )
    span = rep.add_mutually_exclusive_group()
    span.add_argument("--hours", type=_positive, metavar="N", help="each run in the last N hours")
    span.add_argument("--days", type=_positive, metavar="N", help="per-day totals over N days")
    span.add_argument(
        "--trends",
        type=_positive,
        metavar="N",
        help="per day over N days: each scenario's, rule's and agent's counts (the daily"
        " summary, kept [retention] days, after the per-student rows are pruned)",
    )
    span.add_argument(
        "--tables",
        action="store_true",
        help="only the job's tables: size, rows, growth per day, size at the retention settings",
    )
    rep.add_argument("--format", choices=("table", "json"), default="table")

    check_status = commands.add_parser(
        "status",
        help="monitoring check in Nagios plugin form (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)",
    )
    check_status.add_argument(
        "-t",
        "--timeout",
        type=_positive,
        default=STATUS_TIMEOUT_S,
        metavar="SECONDS",
        help=f"answer within this time, UNKNOWN after it (default {STATUS_TIMEOUT_S}: below the"
        " 15 s of the shipped NRPE and Icinga 2 checks)",
    )
    prune = commands.add_parser("prune", help="delete old rows of the job's tables, in batches")
    prune.add_argument(
        "--days",
        type=_positive,
        metavar="N",
        help="keep N days of every row (default: [retention] days and detail_days)",
    )
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 24 * 366:
        raise argparse.ArgumentTypeError(f"{value} is out of range (1..8784)")
    return value


@dataclass
class Context:
    """What a command handler gets: the configuration, its arguments, where plain
    output (tables, the status line, JSON) goes, and the SIGTERM/SIGINT handler."""

    config: Config
    args: argparse.Namespace
    out: output.Output
    signals: coordinate.Signals
    # ``run``: its id once this server claimed the slot, and its summary once it ended.
    run_id: str = ""
    summary: Optional[RunSummary] = None

    def print(self, text: str) -> None:
        """Plain text for a reader or a program (not a log line)."""
        self.out.plain(text)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    log_file = output.open_log(args.log_file) if args.log_file else None
    out = output.setup(verbose=verbose, quiet=bool(getattr(args, "json", False)), log_file=log_file)
    log_hint = out.where or _log_hint()  # now: a stdout that fails later is pointed at /dev/null
    ctx: Optional[Context] = None
    failure: Optional[HeartbeatError] = None
    try:
        with coordinate.stop_signals() as signals:
            try:
                ctx = Context(load_config(args.config), args, out, signals)
                code = COMMANDS[args.command](ctx)
            except HeartbeatError as exc:
                failure = exc
                code = _report_error(args, out, exc, verbose)
            code = _lost_output(out, code)
            if ctx is not None and args.command == "run":
                with signals.held():  # the run is recorded: nothing here may change that
                    _tell_hooks(ctx, code, failure, log_hint)
    except KeyboardInterrupt:  # a signal just outside the handler's lifetime
        log.error("ERROR: interrupted")
        code = EXIT_ABORTED
    return code


def _lost_output(out: output.Output, code: int) -> int:
    """The exit code once output was lost (stdout or the log on a full disk): not 0."""
    if not out.lost:
        return code
    # Best effort (stderr may sit on the same full disk); the exit code tells anyway.
    log.error(
        "ERROR: output lost, cannot write to %s; the command itself finished (a run"
        " records its result in the database: alt42-heartbeat report)",
        out.lost[0],
    )
    return code or EXIT_PARTIAL


def _tell_hooks(ctx: Context, code: int, failure: Optional[HeartbeatError], log_hint: str) -> None:
    """How the run ended, to every monitoring hook: ``finish`` with its summary, or
    ``fail`` with its error (a summary that says only failed or aborted)."""
    summary = ctx.summary
    if failure is not None:
        aborted = isinstance(failure, coordinate.Interrupted)
        summary = RunSummary(run_id="", status="aborted" if aborted else "failed")
    hooks.notify(
        ctx.config,
        "fail" if failure is not None else "finish",
        hooks.Run(
            run_id=ctx.run_id,
            summary=summary,
            exit_code=code,
            error=str(failure or ""),
            transcript=tuple(ctx.out.transcript.lines),
            log_hint=log_hint,
        ),
        dry_run=ctx.args.dry_run,
    )


def _report_error(
    args: argparse.Namespace, out: output.Output, exc: HeartbeatError, verbose: bool
) -> int:
    """One line for a failed command (a monitoring plugin: its UNKNOWN line)."""
    if args.command == "status":
        out.plain(status.unknown(str(exc)))
        return status.UNKNOWN
    if verbose:
        traceback.print_exc()
    log.error("ERROR: %s", exc)
    return exc.exit_code


def _log_hint() -> str:
    """Where this run's whole output went: cron's ``>> file`` shows as stdout's file."""
    with contextlib.suppress(OSError):
        if stat.S_ISREG(os.fstat(sys.stdout.fileno()).st_mode):
            return f"The whole output is in {os.readlink('/proc/self/fd/1')}."
    return "The whole output is where the job's output goes (under cron: its log file)."


def cmd_run(ctx: Context) -> int:
    """Run the job once; ``main`` then tells the monitoring hooks how it ended."""
    config, args = ctx.config, ctx.args
    if args.explain or args.format:
        return _explain(ctx)
    shown = args.progress if args.progress is not None else _is_terminal(ctx.out.stdout)
    if shown and args.json:
        raise ConfigError("--progress cannot be used with --json (stdout holds the JSON only)")
    terminal = ctx.out.status if _is_terminal(ctx.out.stdout) else None
    bar = progress.Progress(terminal) if shown and not args.json else None

    def started(run_id: str) -> None:
        hooks.notify(config, "start", hooks.Run(run_id=run_id), args.dry_run)
        ctx.run_id = run_id

    try:
        summary = execute(
            config,
            dry_run=args.dry_run,
            force=args.force,
            on_start=started,
            signals=ctx.signals,
            on_batch=bar,
        )
    finally:
        if bar:
            bar.close()
    ctx.summary = summary
    if args.json:
        data = {key: value for key, value in summary.as_dict().items() if key != "students_found"}
        ctx.print(json.dumps(data))
    return summary.exit_code


def _explain(ctx: Context) -> int:
    """``run --dry-run --explain ID``: the named students only, nothing written."""
    args = ctx.args
    if not args.explain:
        raise ConfigError("--format is for --explain STUDENT_ID (the run's summary: --json)")
    if not args.dry_run:
        raise ConfigError("--explain needs --dry-run: an explanation writes nothing")
    if args.json or args.force or args.progress:
        raise ConfigError(
            "--explain prints the explanation only: --json, --force and --progress do not"
            " apply (for tools: --format json)"
        )
    book = rules.load_rule_book(ctx.config.heartbeat.rules)
    now = utc_now()
    docs = [
        explain.explain(reading, book, now, ctx.config.heartbeat.interval_minutes)
        for reading in explain.read(ctx.config, args.explain, now)
    ]
    if args.format == "json":
        ctx.print(json.dumps(docs, ensure_ascii=False, default=str, indent=2))
    else:
        ctx.print("\n\n".join(explain.text(doc) for doc in docs))
    return EXIT_OK


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False


def _session(
    config: Config, action: str, statement_timeout: Optional[int] = None, **timeouts: int
) -> contextlib.AbstractContextManager[Any]:
    """One command's connection (``db.session``), with the configured time limits."""
    limit = statement_timeout or config.heartbeat.query_timeout_seconds
    return db.session(config.database, limit, action, **timeouts)


def cmd_migrate(ctx: Context) -> int:
    config = ctx.config
    tables = db.Tables(config.database.prefix)
    with _session(config, "migrating the tables") as conn:
        if ctx.args.dry_run:
            pending = [change.what for change in schema.plan(conn, tables)]
            if ctx.args.compress:
                pending += [table.what for table in _conversions(conn, tables)]
            for what in pending:
                log.info("Pending: %s", what)
            if pending:
                log.info("Schema needs %d change(s) (dry run: none made)", len(pending))
                return EXIT_OK
            changes = 0
        else:
            changes = schema.migrate(conn, tables)
            if ctx.args.compress:
                changes += schema.compress(conn, tables, _conversions(conn, tables))
    log.info(
        "Schema is up to date" + (f" ({changes} change(s) made)" if changes else " (no change)")
    )
    return EXIT_OK


def _conversions(conn: Any, tables: db.Tables) -> list[schema.Conversion]:
    """The tables ``--compress`` would rebuild; none, with one line, where the server
    cannot compress them."""
    pending, problem = schema.conversions(conn, tables)
    if problem and pending:
        log.info("Not compressing %s: %s", ", ".join(table.name for table in pending), problem)
        return []
    return pending


def cmd_check(ctx: Context) -> int:
    config = ctx.config
    log.info("OK config %s", config.path)
    book = rules.load_rule_book(config.heartbeat.rules)
    rule_count = len(set(rules.rule_ids(book)))
    log.info(
        "OK rule book %s: %d scenarios, %d rules", book.source, len(book.scenarios), rule_count
    )
    monitoring = config.monitoring
    if monitoring.mail_to:
        if not os.access(monitoring.sendmail, os.X_OK):
            raise ConfigError(
                f"{config.path}: [monitoring] sendmail = {monitoring.sendmail} cannot be run,"
                " so failure mail cannot be sent; install an MTA (exim4-daemon-light, postfix,"
                " or msmtp-mta to relay to an SMTP server) or set sendmail to its command"
            )
        log.info("OK failure mail to %s via %s", ", ".join(monitoring.mail_to), monitoring.sendmail)
    target = db.describe_target(config.database)
    log.info(
        "OK database %s (socket: %s)", target, config.sources.get("database.socket", "as given")
    )
    log.info("OK host lock %s", config.heartbeat.lock_file)
    if ctx.args.config_only:
        return EXIT_OK
    with _session(config, "checking the schema") as conn:
        log.info("OK connected to %s", target)
        problems = schema.schema_problems(conn, db.Tables(config.database.prefix))
        if problems:
            raise DatabaseError("schema: " + "; ".join(problems))
        log.info("OK tables with prefix '%s' present", config.database.prefix)
        timeout = config.heartbeat.query_timeout_seconds
        server = pacing.Server(conn, config.database, config.pacing, timeout)
        try:
            reading = server.read()
        finally:
            server.close()
        log.info("OK pacing: %s", pacing.describe(reading, config.pacing, server.replica_where))
        with db.errors_as("measuring the job's tables"):
            _check_sizes(config, conn)
    return EXIT_OK


def _check_sizes(config: Config, conn: Any) -> None:
    """The tables' size now and to come; a warning past ``[retention] max_size``."""
    found = sizes.measure(
        conn, db.Tables(config.database.prefix), config.retention, dt.datetime.now(dt.timezone.utc)
    )
    budget = config.retention.max_size
    warning = sizes.over_budget(found, budget) if budget else ""
    if warning:
        log.warning("WARNING: %s", warning)
        return
    log.info(
        "OK table sizes: %s now, about %s at the retention settings%s",
        sizes.human(sum(size.bytes for size in found)),
        sizes.human(sizes.projected_total(found)),
        f" (max_size {sizes.human(budget)})" if budget else "",
    )


def cmd_report(ctx: Context) -> int:
    config, args = ctx.config, ctx.args
    tables = db.Tables(config.database.prefix)
    now = dt.datetime.now(dt.timezone.utc)
    data: dict[str, Any] = {}
    with _session(config, "reading the run history") as conn:
        needed = [tables.heartbeat_log, *([tables.daily] if args.trends else [])]
        found = db.require_tables(conn, tables, *needed)
        with_status = "status" in found[tables.bare(tables.heartbeat_log)]
        whole = not (args.hours or args.days or args.tables or args.trends)
        if args.hours or whole:
            hours = data["hours"] = args.hours or 24
            data["executions"] = report.executions(conn, tables, hours, now, with_status)
        if args.days or args.trends or whole:
            zone, data["time_zone"] = report.zone(conn, config.report.time_zone)
        if args.days or whole:
            days = data["days"] = args.days or 7
            data["daily"] = report.daily(conn, tables, days, now, zone)
        if args.trends:
            data["days"] = args.trends
            first = now.astimezone(zone).date() - dt.timedelta(days=args.trends - 1)
            data["trends"] = daily.read(conn, tables, first)
        if args.tables or whole:
            data["tables"] = sizes.rows(sizes.measure(conn, tables, config.retention, now))
    ctx.print(report.as_json(data) if args.format == "json" else report.as_text(data))
    return EXIT_OK


#: A monitoring check must answer before its caller gives up (check_nrpe's default is
#: 10 s; the shipped NRPE and Icinga 2 definitions allow 15 s): one deadline for the
#: whole check, and each connection attempt and statement within it.
STATUS_CONNECT_S = 3
STATUS_STATEMENT_S = 3


def cmd_status(ctx: Context) -> int:
    timeout = ctx.args.timeout
    with coordinate.time_limit(timeout, f"no answer from the database within {timeout} s (-t)"):
        return _status(ctx, min(timeout, STATUS_CONNECT_S), min(timeout, STATUS_STATEMENT_S))


def _status(ctx: Context, connect_s: int, statement_s: int) -> int:
    config = ctx.config
    tables = db.Tables(config.database.prefix)
    settings = config.heartbeat
    now = dt.datetime.now(dt.timezone.utc)
    with _session(
        config, "reading the run history", statement_s, connect_timeout=connect_s
    ) as conn:
        found = db.require_tables(conn, tables, tables.heartbeat_log)
        log_columns = found[tables.bare(tables.heartbeat_log)]
        limit = status.critical_limit(now, settings, config.monitoring.grace_minutes)
        runs = status.history(conn, tables, log_columns, now - limit)
        busy = students.has_active_sessions(
            conn, tables, now, settings.window_hours, settings.open_session_hours
        )
    where = status.php_schedules_here(config.path) if runs.php_rows else None
    state, line = status.assess(runs, now, limit, busy, where)
    ctx.print(line)
    return state


def cmd_prune(ctx: Context) -> int:
    config, args = ctx.config, ctx.args
    keep = retention.keep_days(config.retention)
    if args.days:
        keep = dict.fromkeys(keep, args.days)
    now = dt.datetime.now(dt.timezone.utc)
    older_than = {attr: now - dt.timedelta(days=days) for attr, days in keep.items()}
    with _session(config, "pruning old rows") as conn:
        # Every web server may schedule prune at the same minute: one at a time.
        if db.named_lock(conn, db.lock_name(config.database, "prune")) is False:
            log.info("Skipped: another server is pruning")
            return EXIT_OK
        deleted = retention.prune(
            conn, db.Tables(config.database.prefix), older_than, config.retention.batch_size
        )
    run_days, detail_days = keep["heartbeat_log"], keep["event_log"]
    log.info(
        "Prune done: %d row(s) deleted, keeping %d day(s) of run rows, %d of per-student rows",
        sum(deleted.values()),
        run_days,
        detail_days,
    )
    return EXIT_OK


COMMANDS: dict[str, Callable[[Context], int]] = {
    "run": cmd_run,
    "migrate": cmd_migrate,
    "check": cmd_check,
    "report": cmd_report,
    "status": cmd_status,
    "prune": cmd_prune,
}
