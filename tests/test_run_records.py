"""A run always ends recorded: a signal or an unforeseen error at any moment leaves the
run row ``aborted`` or ``failed`` (never ``running``), pings the failure, mails it,
releases the locks and exits with a documented code; no connection waits forever; the
host lock is per site. Against the real MariaDB."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from heartbeat import cli, coordinate, ping, store, students
from heartbeat.config import load_config
from tests.conftest import DB_PASSWORD, Monitor, Site, cli_env, mailed, start_cli


def ini_with(site: Site, monitor: str, mta: Path, **heartbeat: Any) -> Path:
    ini = site.write_ini(**heartbeat)
    with ini.open("a", encoding="utf-8") as handle:
        handle.write(f"[monitoring]\nping_url = {monitor}\nmail_to = ops\nsendmail = {mta}\n")
    return ini


def kill_self(signum: int) -> Callable[..., None]:
    def send(*_args: Any, **_kwargs: Any) -> None:
        os.kill(os.getpid(), signum)

    return send


def before(module: Any, name: str, hook: Callable[..., None]) -> Callable[[], None]:
    """Patch ``module.name`` to call ``hook`` first; returns the undo."""
    real = getattr(module, name)

    def patched(*args: Any, **kwargs: Any) -> Any:
        hook(*args, **kwargs)
        return real(*args, **kwargs)

    setattr(module, name, patched)
    return lambda: setattr(module, name, real)


def after(module: Any, name: str, hook: Callable[..., None]) -> Callable[[], None]:
    """Patch ``module.name`` to call ``hook`` once it has returned; returns the undo."""
    real = getattr(module, name)

    def patched(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        hook(*args, **kwargs)
        return result

    setattr(module, name, patched)
    return lambda: setattr(module, name, real)


def run_main(ini: Path) -> int:
    """The CLI in this process (its signal handlers are this process's)."""
    return cli.main(["--config", str(ini), "run"])


def assert_recorded(site: Site, status: str, code: int) -> None:
    rows = site.query("SELECT status, exit_code, finished_at FROM mdl_alt42_heartbeat_log")
    assert [(r[0], r[1]) for r in rows] == [(status, code)], rows
    assert rows[0][2] is not None


def assert_released(site: Site) -> None:
    """The host lock and the database lock are free again: a run goes through."""
    config = load_config(str(site.tmp / "heartbeat.ini"))
    lock = coordinate.HostLock(config.heartbeat.lock_file)
    assert lock.acquire(), "the host lock is still held"
    lock.release()
    with site.conn() as conn, conn.cursor() as cur:
        cur.execute("SELECT IS_FREE_LOCK(%s)", (f"alt42_heartbeat:{site.name}:mdl_",))
        assert cur.fetchone()[0] == 1


# Where a signal arrives, and how to make it arrive there (a patch, then its undo).
PHASES: dict[str, Callable[[int], Callable[[], None]]] = {
    # the slot row is committed, the function has not returned yet
    "claiming": lambda sig: after(store, "claim_slot", kill_self(sig)),
    # the start ping is on its way
    "pinging": lambda sig: before(
        ping, "notify", lambda *a, **k: a[1] == "start" and kill_self(sig)()
    ),
    "reading active students": lambda sig: before(students, "active_student_ids", kill_self(sig)),
}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
@pytest.mark.parametrize("phase", list(PHASES))
def test_a_signal_at_any_moment_ends_the_run_recorded(
    demo_site: Site,
    monitor: str,
    mta: Path,
    capsys: pytest.CaptureFixture[str],
    phase: str,
    signum: int,
) -> None:
    ini = ini_with(demo_site, monitor, mta)
    undo = PHASES[phase](signum)
    previous = signal.getsignal(signum)
    try:
        code = run_main(ini)
    finally:
        undo()
    assert signal.getsignal(signum) is previous  # the handler is restored
    err = capsys.readouterr().err
    assert code == 4, err
    assert_recorded(demo_site, "aborted", 4)
    name = signal.Signals(signum).name
    assert f"ERROR: aborted: {name} received while " in err
    assert "Traceback" not in err and DB_PASSWORD not in err
    assert any(hit.startswith("/ping/abc-123/4?") for hit in Monitor.hits), Monitor.hits
    [message] = mailed(mta)
    assert "exit 4" in message["Subject"]
    assert_released(demo_site)


def test_a_signal_while_connecting_leaves_no_row_and_exits_4(
    demo_site: Site, monitor: str, mta: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from heartbeat import db  # noqa: PLC0415 - the module whose connection class is patched

    ini = ini_with(demo_site, monitor, mta)
    undo = before(db, "CountingConnection", kill_self(signal.SIGTERM))
    try:
        code = run_main(ini)
    finally:
        undo()
    err = capsys.readouterr().err
    assert code == 4, err
    assert "aborted: SIGTERM received while connecting to the database" in err
    assert demo_site.query("SELECT status FROM mdl_alt42_heartbeat_log") == []
    assert_released(demo_site)


def test_an_unforeseen_error_is_recorded_failed_with_exit_5(
    demo_site: Site, monitor: str, mta: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ini = ini_with(demo_site, monitor, mta)

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise TypeError("'<' not supported between instances of 'str' and 'datetime'")

    undo = before(students, "load_states", broken)
    try:
        code = run_main(ini)
    finally:
        undo()
    err = capsys.readouterr().err
    assert code == 5, err
    [line] = [ln for ln in err.splitlines() if ln.strip()]
    assert "ERROR: internal error while reading student state: TypeError: '<' not supported" in line
    assert "Traceback" not in err
    assert_recorded(demo_site, "failed", 5)
    assert any(hit.startswith("/ping/abc-123/5?") for hit in Monitor.hits), Monitor.hits
    [message] = mailed(mta)
    assert "exit 5, internal error" in message["Subject"]
    assert_released(demo_site)


def test_sigint_to_a_real_process_exits_4_not_130(demo_site: Site) -> None:
    demo_site.executemany(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time)"
        " VALUES (%s, UNIX_TIMESTAMP() - 60)",
        [(str(30000 + n),) for n in range(2000)],
    )
    ini = demo_site.write_ini(batch_size=1)
    process = subprocess.Popen(
        [sys.executable, "-m", "heartbeat", "--config", str(ini), "run", "--verbose"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "] student " in line:
            process.send_signal(signal.SIGINT)
            break
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 4, err
    assert "Traceback" not in err
    assert demo_site.scalar("SELECT status FROM mdl_alt42_heartbeat_log") == "aborted"


# --------------------------------------------------------------------------- time limits


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word: a hung server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


HUNG_SERVER_COMMANDS = {
    "status": "HEARTBEAT UNKNOWN - database error while",
    "run": "ERROR: database error while connecting",
    "report": "ERROR: database error while",
    "prune": "ERROR: database error while",
}


def test_a_hung_server_never_makes_a_command_hang(site: Site, silent_server: int) -> None:
    """Each command against a server that accepts and never answers ends with exit 3 and
    a timed-out error. They run side by side: each waits its connect timeout (10 s)."""
    ini = site.write_ini()
    tcp = f"host = 127.0.0.1\nport = {silent_server}"
    ini.write_text(ini.read_text().replace(f"socket = {site.server.socket}", tcp))
    jobs = {command: start_cli("--config", str(ini), command) for command in HUNG_SERVER_COMMANDS}
    for command, job in jobs.items():
        out, err = job.communicate(timeout=120)  # the connect timeout ends it long before
        assert job.returncode == 3, (command, out, err)
        output = out + err
        assert HUNG_SERVER_COMMANDS[command] in output, (command, output)
        assert "timed out" in output, (command, output)
        assert "Traceback" not in output, (command, output)


# --------------------------------------------------------------------------- one lock per site


def test_two_sites_on_one_server_never_skip_each_other(demo_site: Site, tmp_path: Path) -> None:
    """The host lock follows the database: a run of site A in progress (its lock held)
    does not make site B's run skip, as the one fixed lock file did."""
    ini = demo_site.write_ini()
    text = "\n".join(line for line in ini.read_text().splitlines() if "lock_file" not in line)
    ini.write_text(text + "\n")
    config = load_config(str(ini))
    assert config.heartbeat.lock_file.startswith(f"/run/lock/alt42-heartbeat-{demo_site.name}-")
    other = coordinate.HostLock(
        config.heartbeat.lock_file.replace(demo_site.name, "moodle_other_site")
    )
    assert other.acquire()  # site A, running
    try:
        result = subprocess.run(
            [sys.executable, "-m", "heartbeat", "--config", str(ini), "run"],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=120,
            check=False,
        )
    finally:
        other.release()
    assert result.returncode == 0, result.stderr
    assert "Skipped" not in result.stdout
    assert demo_site.scalar("SELECT status FROM mdl_alt42_heartbeat_log") == "success"


def test_a_server_that_hangs_mid_run_ends_the_run_with_exit_3(demo_site: Site) -> None:
    """The server stops answering between two batches (SIGSTOP): the next statement's
    read gives up a little after query_timeout_seconds, the run exits 3, and the locks
    go with the process, instead of a run holding its slot for ever."""
    demo_site.executemany(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time)"
        " VALUES (%s, UNIX_TIMESTAMP() - 60)",
        [(str(40000 + n),) for n in range(200)],
    )
    ini = demo_site.write_ini(batch_size=1, query_timeout_seconds=2)
    server = demo_site.server.process
    assert server is not None
    process = subprocess.Popen(
        [sys.executable, "-m", "heartbeat", "--config", str(ini), "run", "--verbose"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if "] student " in line:
                os.kill(server.pid, signal.SIGSTOP)
                break
        _out, err = process.communicate(timeout=120)
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert process.returncode == 3, err
    assert "timed out" in err
    assert "Traceback" not in err.splitlines()[-1]
