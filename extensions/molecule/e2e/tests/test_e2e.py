"""End to end: the exact cron command, run as www-data, and then cron itself, write the
expected rows into the seeded database (tests/sql/demo_data.sql: 8 active students)."""

from __future__ import annotations

import email
import email.policy
import re
import time
from email.message import EmailMessage

import alt42_expect as x

ACTIVE_STUDENTS = 8
SCENARIOS_PER_STUDENT = 5
EVALUATION_LOG = "mdl_alt42_scenario_evaluation_log"
EVENT_LOG = "mdl_alt42_event_processing_log"


def scalar(host, query: str) -> int:
    rows = x.sql(host, query)
    assert len(rows) == 1 and len(rows[0]) == 1, rows
    return int(rows[0][0])


def heartbeat_rows(host) -> int:
    return scalar(host, f"SELECT COUNT(*) FROM {x.HEARTBEAT_LOG}")


def test_migrate_as_www_data(host):
    command = f"{x.CLI} --config {x.CONFIG_FILE} migrate"
    first = host.run(x.as_www_data(command))
    assert first.rc == 0, first
    again = host.run(x.as_www_data(command))
    assert again.rc == 0, again
    tables = {r[0] for r in x.sql(host, "SHOW TABLES")}
    assert {x.HEARTBEAT_LOG, EVALUATION_LOG, EVENT_LOG, "mdl_alt42_heartbeat_daily"} <= tables


def wait_for_a_slot_nobody_ran(host) -> None:
    """cron ran the job every minute until test_adopt stopped it: the next minute is a
    slot of its own (the schedule is * * * * *)."""
    ran = x.sql(
        host,
        f"SELECT COUNT(*) FROM {x.HEARTBEAT_LOG}"
        " WHERE slot_start >= DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:00')",
    )
    if int(ran[0][0]):
        second = int(host.check_output("date +%S"))
        time.sleep(61 - second)


def test_the_exact_cron_command_writes_the_rows(host):
    job = x.cron_job(host)
    assert job.command == x.expected_command()
    wait_for_a_slot_nobody_ran(host)
    before = heartbeat_rows(host)
    log_before = host.file(x.LOG_FILE).size if host.file(x.LOG_FILE).exists else 0

    result = host.run(x.as_www_data(job.command))
    assert result.rc == 0, (result, host.run(f"tail -n 30 {x.LOG_FILE}").stdout)

    assert heartbeat_rows(host) == before + 1
    run_id, processed, errors, status = x.sql(
        host,
        f"SELECT run_id, students_processed, errors, status FROM {x.HEARTBEAT_LOG}"
        " ORDER BY id DESC LIMIT 1",
    )[0]
    assert int(processed) == ACTIVE_STUDENTS
    assert int(errors) == 0
    assert status == "success"

    events = x.sql(host, f"SELECT event_id, student_id FROM {EVENT_LOG} WHERE run_id = '{run_id}'")
    assert len(events) == ACTIVE_STUDENTS
    students = {student for _, student in events}
    assert len(students) == ACTIVE_STUDENTS
    assert "1009" not in students and "1010" not in students, "inactive students"

    per_student = dict(
        x.sql(
            host,
            f"SELECT e.student_id, COUNT(*) FROM {EVALUATION_LOG} e"
            f" JOIN {EVENT_LOG} v ON v.event_id = e.event_id"
            f" WHERE v.run_id = '{run_id}' GROUP BY e.student_id",
        )
    )
    assert set(per_student) == students
    assert all(int(n) == SCENARIOS_PER_STUDENT for n in per_student.values()), per_student
    assert sum(int(n) for n in per_student.values()) == ACTIVE_STUDENTS * SCENARIOS_PER_STUDENT

    log = host.file(x.LOG_FILE)
    assert log.user == "www-data"
    assert log.size > log_before, "the run's output is appended to the cron log"


def test_run_once_proves_a_run_even_right_after_cron(host):
    """playbooks/run_once.yml (the manual's "manual run test") right after cron ran the
    job: it forces a run of the slot instead of reporting a skip, and says it completed."""
    before = heartbeat_rows(host)
    run = x.ansible_playbook(
        playbook="playbooks/run_once.yml", extra_vars={"alt42_run_once_hosts": "all"}
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert f"] Completed: {ACTIVE_STUDENTS} processed, 0 errors" in out, out[-4000:]
    assert heartbeat_rows(host) == before + 1
    assert x.db_password() not in out


def test_password_not_in_world_readable_files_after_the_runs(host):
    """The runs wrote logs (world-readable): they must not show the password."""
    assert x.world_readable_files_containing(host, x.db_password()) == []


def test_the_daily_prune_line_deletes_old_rows_as_www_data(host):
    [prune] = x.prune_jobs(host)
    assert (prune.schedule, prune.user) == (x.PRUNE_SCHEDULE, "www-data")
    for days in (100, 500):  # run rows are kept 400 days
        x.sql(
            host,
            f"INSERT INTO {x.HEARTBEAT_LOG} (execution_time, created_at) VALUES"
            f" (UTC_TIMESTAMP() - INTERVAL {days} DAY, UTC_TIMESTAMP() - INTERVAL {days} DAY)",
        )
    before = heartbeat_rows(host)
    result = host.run(x.as_www_data(prune.command))
    assert result.rc == 0, result
    assert heartbeat_rows(host) == before - 1, "the 500-day-old row went, the others stay"
    log = host.check_output(f"tail -n 5 {x.LOG_FILE}")
    assert "Prune done: 1 row(s) deleted, keeping 400 day(s) of run rows, 35 of" in log


MAILBOX = "/var/mail/ops"  # exim4's local delivery for [ops] (molecule.yml, prepare.yml)


def mails(host) -> list[EmailMessage]:
    """The messages in the mailbox (mbox: split at 'From ' lines), parsed."""
    if not host.file(MAILBOX).exists:
        return []
    text = host.check_output(f"cat {MAILBOX}")
    return [
        email.message_from_string(chunk.split("\n", 1)[1], policy=email.policy.default)
        for chunk in re.split(r"(?m)^(?=From \S+ )", text)
        if chunk.strip()
    ]


def wait_for_mails(host, count: int) -> list[EmailMessage]:
    deadline = time.monotonic() + 30
    while len(mails(host)) < count and time.monotonic() < deadline:
        time.sleep(1)
    return mails(host)


def test_the_successful_runs_mailed_nothing(host):
    assert heartbeat_rows(host) >= 2, "the runs above succeeded"
    assert mails(host) == []


def test_a_failed_run_is_mailed_through_the_mta(host):
    job = x.cron_job(host)
    assert host.run("service mariadb stop").rc == 0
    try:
        result = host.run(x.as_www_data(job.command))
        assert result.rc == 3, result
        [message] = wait_for_mails(host, 1)
    finally:
        assert host.run("service mariadb start").rc == 0
    hostname = host.check_output("hostname")
    assert message["Subject"] == (
        f"alt42-heartbeat on {hostname}: run failed (exit 3, database error)"
    )
    assert message["To"].startswith("ops"), "exim qualifies the local address"
    body = message.get_content()
    assert "database error while connecting to database 'moodle'" in body
    assert f"The whole output is in {x.LOG_FILE}." in body
    assert x.db_password() not in message.as_string()


def test_a_full_log_disk_fails_the_run_clearly_and_it_still_records_itself(host):
    """/var/log/alt42 is a 1 MB tmpfs here: fill it, then run the cron command (forced,
    so that this minute's slot is not already taken)."""
    filler = f"{x.LOG_DIR}/filler"
    kept = f"{x.LOG_DIR}/before-full.log"
    command = x.cron_job(host).command + " --force"
    before = heartbeat_rows(host)
    # An empty log: a tmpfs would still take bytes into the last, partly used page of
    # the log as it is, so the log must need a new page for its first byte.
    host.check_output(
        f"mv {x.LOG_FILE} {kept} && install -o www-data -g www-data -m 0644 /dev/null"
        f" {x.LOG_FILE} && (dd if=/dev/zero of={filler} bs=4k 2>/dev/null; true)"
    )
    try:
        probe = host.run(x.as_www_data(f"printf x >> {x.LOG_FILE}"))
        assert probe.rc != 0, "the log disk must be full"
        result = host.run(x.as_www_data(command))
        assert result.rc == 1, result
        assert heartbeat_rows(host) == before + 1
        status, processed, exit_code = x.sql(
            host,
            f"SELECT status, students_processed, exit_code FROM {x.HEARTBEAT_LOG}"
            " ORDER BY id DESC LIMIT 1",
        )[0]
        assert (status, int(processed), exit_code) == ("success", ACTIVE_STUDENTS, "0")
        messages = wait_for_mails(host, 2)
    finally:
        host.run(f"rm -f {filler} && cat {x.LOG_FILE} >> {kept} && mv {kept} {x.LOG_FILE}")
    assert len(messages) == 2, [m["Subject"] for m in messages]
    assert (
        "run failed (exit 1, some students failed, or the job's output could not be"
        in (messages[1]["Subject"])
    )
    body = messages[1].get_content()
    assert f"ERROR: output lost, cannot write to {x.LOG_FILE}: No space left on device" in body
    assert "Completed: 8 processed, 0 errors" in body


def test_run_once_never_shows_a_root_only_file_through_a_planted_link(host):
    """The log directory is www-data's: whoever runs as www-data can replace the log by a
    link to a file only root may read. run_once read the log as root and printed it."""
    root_only = "/root/alt42-root-only"
    host.check_output(
        f"echo ROOT-ONLY-MARKER > {root_only} && chmod 0600 {root_only}"
        f" && mv {x.LOG_FILE} {x.LOG_FILE}.real && ln -s {root_only} {x.LOG_FILE}"
    )
    try:
        run = x.ansible_playbook(
            playbook="playbooks/run_once.yml", extra_vars={"alt42_run_once_hosts": "all"}
        )
    finally:
        host.run(f"rm -f {x.LOG_FILE} {root_only} && mv {x.LOG_FILE}.real {x.LOG_FILE}")
    assert "ROOT-ONLY-MARKER" not in run.stdout + run.stderr
