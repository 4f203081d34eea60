"""The ``alt42-heartbeat`` command line: parse, dispatch, and turn errors into exit codes.

This is the only module that prints. Normal output is ``[YYYY-MM-DD HH:MM:SS] message``
lines (UTC) on stdout, which cron appends to the log; each error is one line on stderr
(a traceback only with ``--verbose``). Exit codes: 0 success or skipped, 1 some
students failed, 2 configuration or usage error, 3 database error, 4 aborted (deadline
or signal). ``status`` follows the monitoring-plugin convention instead (0-3).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import os
import stat
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any, Callable, NoReturn, Optional, TextIO

from heartbeat import (
    __version__,
    db,
    mail,
    metrics,
    ping,
    report,
    retention,
    rules,
    schema,
    status,
    students,
)
from heartbeat.config import Config, MonitoringConfig, load_config
from heartbeat.errors import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PARTIAL,
    ConfigError,
    DatabaseError,
    HeartbeatError,
)
from heartbeat.run import Output, RunSummary, execute


def stamp(message: str) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"[{now}] {message}"


def _printer(stream: TextIO) -> Callable[[str], None]:
    def write(message: str) -> None:
        _emit(stamp(message), stream)

    return write


#: Writes to stdout/stderr that failed (full disk under the log, closed pipe).
_LOST_OUTPUT: list[str] = []
#: The last lines this process printed, for the failure mail.
_TRANSCRIPT: collections.deque[str] = collections.deque(maxlen=mail.TRANSCRIPT_LINES)


def _emit(text: str, stream: TextIO) -> None:
    """Print a line; if the stream cannot take it, note that and carry on.

    A full disk under cron's log must not stop a run half-way (its database row would
    stay 'running'): the run goes on, ``main`` reports the loss at the end and exits
    non-zero. The stream is pointed at /dev/null so that its unwritten buffer cannot
    fail again when Python exits.
    """
    _TRANSCRIPT.append(text)
    try:
        print(text, file=stream, flush=True)
    except OSError as exc:
        _LOST_OUTPUT.append(f"{getattr(stream, 'name', 'output')}: {exc.strerror or exc}")
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)


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
        help="INI file (default: $ALT42_HEARTBEAT_CONFIG or /etc/alt42/heartbeat.ini)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    run = commands.add_parser("run", help="process every active student once")
    run.add_argument("--dry-run", action="store_true", help="read and evaluate, write nothing")
    run.add_argument("--json", action="store_true", help="print one JSON summary only")
    run.add_argument("--verbose", action="store_true", help="one line per student; tracebacks")
    run.add_argument(
        "--force",
        action="store_true",
        help="run even if this schedule slot already ran (manual re-run); the locks still hold",
    )

    commands.add_parser("migrate", help="create or extend the tables the job writes (idempotent)")
    check = commands.add_parser("check", help="check config, database, tables and rule book")
    check.add_argument(
        "--config-only",
        action="store_true",
        help="check the files only, not the database (the role validates the INI with this)",
    )

    rep = commands.add_parser("report", help="recent runs and daily aggregates")
    span = rep.add_mutually_exclusive_group()
    span.add_argument("--hours", type=_positive, metavar="N", help="each run in the last N hours")
    span.add_argument("--days", type=_positive, metavar="N", help="per-day totals over N days")
    rep.add_argument("--format", choices=("table", "json"), default="table")

    commands.add_parser(
        "status",
        help="monitoring check in Nagios plugin form (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)",
    )
    prune = commands.add_parser("prune", help="delete old rows of the job's tables, in batches")
    prune.add_argument(
        "--days", type=_positive, metavar="N", help="keep N days (default: [retention] days)"
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    _LOST_OUTPUT.clear()
    _TRANSCRIPT.clear()
    log_hint = _log_hint()  # now: a stdout that fails later is pointed at /dev/null
    verbose = bool(getattr(args, "verbose", False))
    error = _printer(sys.stderr)
    config: Optional[Config] = None
    try:
        config = load_config(args.config)
        handler: Callable[[Config, argparse.Namespace], int] = COMMANDS[args.command]
        code = handler(config, args)
    except HeartbeatError as exc:
        if args.command == "status":  # a monitoring plugin reports its own failure as UNKNOWN
            _emit(status.unknown(str(exc)), sys.stdout)
            return status.UNKNOWN
        if verbose:
            traceback.print_exc()
        error(f"ERROR: {exc}")
        code = exc.exit_code
    except KeyboardInterrupt:
        error("ERROR: interrupted")
        return 130
    if _LOST_OUTPUT:
        # Best effort (stderr may sit on the same full disk); the exit code tells anyway.
        error(
            f"ERROR: output lost, cannot write to {_LOST_OUTPUT[0]}; the command itself"
            " finished (a run records its result in the database: alt42-heartbeat report)"
        )
        code = code or EXIT_PARTIAL
    if config is not None and args.command == "run" and not args.dry_run and code != EXIT_OK:
        _mail_failure(config.monitoring, code, log_hint, _printer(sys.stderr))
    return code


def _mail_failure(
    monitoring: MonitoringConfig, code: int, log_hint: str, warn: Callable[[str], None]
) -> None:
    """Mail the run's output to ``[monitoring] mail_to``, if set (skipped runs exit 0)."""
    if not monitoring.mail_to:
        return
    message = mail.failure_message(
        monitoring.mail_to, monitoring.mail_from, code, list(_TRANSCRIPT), log_hint
    )
    mail.send(monitoring.sendmail, message, warn)


def _log_hint() -> str:
    """Where this run's whole output went: cron's ``>> file`` shows as stdout's file."""
    with contextlib.suppress(OSError):
        if stat.S_ISREG(os.fstat(sys.stdout.fileno()).st_mode):
            return f"The whole output is in {os.readlink('/proc/self/fd/1')}."
    return "The whole output is where the job's output goes (under cron: its log file)."


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    quiet = bool(args.json)
    say = (lambda _message: None) if quiet else _printer(sys.stdout)
    warn = _printer(sys.stderr)
    monitoring = config.monitoring
    run_ids: list[str] = []

    def started(run_id: str) -> None:
        run_ids.append(run_id)
        _ping(monitoring, "start", run_id, warn)

    out = Output(say=say, detail=say if args.verbose and not quiet else None, started=started)
    try:
        summary = execute(config, out, dry_run=args.dry_run, force=args.force)
    except DatabaseError as exc:
        # The database failed: tell the monitor and the metrics, then report as usual.
        if not args.dry_run:
            _ping(monitoring, str(exc.exit_code), run_ids[0] if run_ids else "", warn, str(exc))
            _write_metrics(monitoring, RunSummary(run_id="", status="failed"), warn)
        raise
    if args.json:
        data = {key: value for key, value in summary.as_dict().items() if key != "students_found"}
        _emit(json.dumps(data), sys.stdout)
    if summary.status not in ("skipped", "dry_run"):  # only the server that ran reports
        event = "success" if summary.exit_code == EXIT_OK else str(summary.exit_code)
        _ping(monitoring, event, summary.run_id, warn)
        _write_metrics(monitoring, summary, warn)
    return summary.exit_code


def _ping(
    monitoring: MonitoringConfig,
    event: str,
    run_id: str,
    warn: Callable[[str], None],
    body: str = "",
) -> None:
    ping.send(
        monitoring.ping_url,
        event,
        run_id,
        warn,
        timeout=monitoring.ping_timeout_seconds,
        retries=monitoring.ping_retries,
        body=body,
    )


def _write_metrics(
    monitoring: MonitoringConfig, summary: RunSummary, warn: Callable[[str], None]
) -> None:
    """The node_exporter textfile; a failure to write it is reported, never fatal."""
    if not monitoring.metrics_file:
        return
    now = time.time()
    succeeded = summary.status in ("success", "partial")
    last_success = now if succeeded else metrics.previous_success(monitoring.metrics_file)
    content = metrics.render(
        summary.status,
        now,
        summary.duration_ms,
        summary.students_processed,
        summary.errors,
        last_success,
    )
    try:
        metrics.write_atomically(monitoring.metrics_file, content)
    except OSError as exc:
        warn(f"ERROR: cannot write metrics file {monitoring.metrics_file}: {exc.strerror or exc}")


def cmd_migrate(config: Config, args: argparse.Namespace) -> int:
    say = _printer(sys.stdout)
    conn = db.connect(config.database)
    try:
        with db.errors_as("migrating the tables"):
            changes = schema.migrate(conn, db.Tables(config.database.prefix), say)
    finally:
        db.close_quietly(conn)
    say("Schema is up to date" + (f" ({changes} change(s) made)" if changes else " (no change)"))
    return EXIT_OK


def cmd_check(config: Config, args: argparse.Namespace) -> int:
    say = _printer(sys.stdout)
    say(f"OK config {config.path}")
    book = rules.load_rule_book(config.heartbeat.rules)
    rule_count = len(set(rules.rule_ids(book)))
    say(f"OK rule book {book.source}: {len(book.scenarios)} scenarios, {rule_count} rules")
    monitoring = config.monitoring
    if monitoring.mail_to:
        if not os.access(monitoring.sendmail, os.X_OK):
            raise ConfigError(
                f"{config.path}: [monitoring] sendmail = {monitoring.sendmail} cannot be run,"
                " so failure mail cannot be sent; install an MTA (exim4-daemon-light, postfix,"
                " or msmtp-mta to relay to an SMTP server) or set sendmail to its command"
            )
        say(f"OK failure mail to {', '.join(monitoring.mail_to)} via {monitoring.sendmail}")
    target = db.describe_target(config.database)
    say(f"OK database {target} (socket: {config.sources.get('database.socket', 'as given')})")
    if args.config_only:
        return EXIT_OK
    conn = db.connect(config.database)
    try:
        say(f"OK connected to {target}")
        with db.errors_as("checking the schema"):
            problems = schema.schema_problems(conn, db.Tables(config.database.prefix))
    finally:
        db.close_quietly(conn)
    if problems:
        raise DatabaseError("schema: " + "; ".join(problems))
    say(f"OK tables with prefix '{config.database.prefix}' present")
    return EXIT_OK


def cmd_report(config: Config, args: argparse.Namespace) -> int:
    tables = db.Tables(config.database.prefix)
    now = dt.datetime.now(dt.timezone.utc)
    conn = db.connect(config.database)
    data: dict[str, Any] = {}
    try:
        with db.errors_as("reading the run history"):
            found = db.columns_of(conn, tables)
            if tables.bare(tables.heartbeat_log) not in found:
                raise DatabaseError(
                    f"table {tables.bare(tables.heartbeat_log)} is missing"
                    " (run 'alt42-heartbeat migrate')"
                )
            with_status = "status" in found[tables.bare(tables.heartbeat_log)]
            if args.days is None:
                hours = args.hours or 24
                data["hours"] = hours
                data["executions"] = report.executions(conn, tables, hours, now, with_status)
            if args.hours is None:
                days = args.days or 7
                data["days"] = days
                data["daily"] = report.daily(conn, tables, days, now)
    finally:
        db.close_quietly(conn)
    if args.format == "json":
        _emit(report.as_json(data), sys.stdout)
        return EXIT_OK
    if "executions" in data:
        _emit(f"Runs in the last {data['hours']} hour(s):", sys.stdout)
        _emit(report.as_table(data["executions"], report.EXECUTION_COLUMNS), sys.stdout)
    if "daily" in data:
        if "executions" in data:
            _emit("", sys.stdout)
        _emit(f"Per day over the last {data['days']} day(s):", sys.stdout)
        _emit(report.as_table(data["daily"], report.DAILY_COLUMNS), sys.stdout)
    return EXIT_OK


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    tables = db.Tables(config.database.prefix)
    settings = config.heartbeat
    now = dt.datetime.now(dt.timezone.utc)
    conn = db.connect(config.database)
    try:
        with db.errors_as("reading the run history"):
            found = db.columns_of(conn, tables)
            log_columns = found.get(tables.bare(tables.heartbeat_log))
            if log_columns is None:
                raise DatabaseError(
                    f"table {tables.bare(tables.heartbeat_log)} is missing"
                    " (run 'alt42-heartbeat migrate')"
                )
            last, last_completed = status.last_runs(conn, tables, "status" in log_columns)
            busy = students.has_active_sessions(
                conn, tables, now, settings.window_hours, settings.open_session_hours
            )
    finally:
        db.close_quietly(conn)
    limit = status.critical_limit(now, settings, config.monitoring.grace_minutes)
    state, line = status.assess(last, last_completed, now, limit, busy)
    _emit(line, sys.stdout)
    return state


def cmd_prune(config: Config, args: argparse.Namespace) -> int:
    say = _printer(sys.stdout)
    days = args.days or config.retention.days
    older_than = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
    conn = db.connect(config.database)
    try:
        with db.errors_as("pruning old rows"):
            # Every web server may schedule prune at the same minute: one at a time.
            if db.named_lock(conn, db.lock_name(config.database, "prune")) is False:
                say("Skipped: another server is pruning")
                return EXIT_OK
            deleted = retention.prune(
                conn,
                db.Tables(config.database.prefix),
                older_than,
                config.retention.batch_size,
                say,
            )
    finally:
        db.close_quietly(conn)
    say(f"Prune done: {sum(deleted.values())} row(s) deleted, keeping {days} day(s)")
    return EXIT_OK


COMMANDS: dict[str, Callable[[Config, argparse.Namespace], int]] = {
    "run": cmd_run,
    "migrate": cmd_migrate,
    "check": cmd_check,
    "report": cmd_report,
    "status": cmd_status,
    "prune": cmd_prune,
}
