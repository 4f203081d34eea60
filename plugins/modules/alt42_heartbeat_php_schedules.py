#!/usr/bin/python
"""Find, retire and restore the schedules of the PHP heartbeat job on a host.

Why a module of its own: the seed manual scheduled ``heartbeat.php`` in one of several
places (root's crontab, the web server user's crontab, ``/etc/cron.d/alt42-heartbeat``,
``/etc/crontab``), at ``*/30`` or another interval, sometimes with a ``|| ... | mail``
suffix. A role that adds its own schedule and leaves those runs the job twice per slot
(or, when the PHP job keeps its log root-owned, never runs the new one). This module
reads every cron table, reports each line that runs the script, and comments such a line
out with a marker (``retire``) or removes the marker again (``restore``): it never deletes
a line, and every other line (Moodle's own ``admin/cli/cron.php``) stays byte for byte.
Check mode and ``--diff`` show all of it beforehand.

The manual's ``/etc/cron.d/alt42-heartbeat`` has the name of the role's own file: it is
set aside as ``/etc/cron.d/alt42-heartbeat-manual`` (with its lines retired or kept as
asked) before the role writes its file. A copy of it that an earlier release of the role
left as ``alt42-heartbeat.<date>~`` is set aside the same way (retired: it did not run).
"""

from __future__ import annotations

import grp
import json
import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: alt42_heartbeat_php_schedules
short_description: Find, retire and restore the cron schedules of the PHP heartbeat job
description:
  - Reads the system crontab, every file in the cron.d directory and every user crontab,
    and reports each line that runs the PHP heartbeat script.
  - C(retire) comments such lines out with a marker; C(restore) removes the marker.
    Lines are never deleted; other lines are never changed.
options:
  state:
    description:
      - report reads only; keep only sets the manual's cron.d file aside (the role needs
        its name); retire also comments out every line that runs the script; restore
        removes the marker from every retired line.
    type: str
    choices: [report, keep, retire, restore]
    default: report
  script:
    description: File name of the PHP job that a command must run to count.
    type: str
    default: heartbeat.php
  own_name:
    description: Name of the role's own cron.d file and crontab entries (C(#Ansible) name).
    type: str
    default: alt42-heartbeat
  cron_d_dir:
    type: path
    default: /etc/cron.d
  system_crontab:
    type: path
    default: /etc/crontab
  spool_dir:
    description: Where the user crontabs live (one file per user).
    type: path
    default: /var/spool/cron/crontabs
  record:
    description: Write what was found as JSON to this file (read by C(alt42-heartbeat status)).
    type: path
  record_group:
    description: Group of the record file (mode 0640, owner root).
    type: str
    default: root
  schedule:
    description:
      - The schedule the role is given. C(adopt) resolves to the PHP job's own schedule
        (or, once that is retired and gone, the role's existing entry's); the result's
        C(schedule) is the resolved one. Any other value is returned as it is, with a
        warning when an active PHP line runs at another one.
    type: str
  warn_active:
    description: Warn with this text when lines that run the script stay active.
    type: str
  warn_none:
    description: Warn with this text when no line runs the script any more.
    type: str
"""

MARKER = "#alt42-heartbeat retired# "
MANUAL_SUFFIX = "-manual"
_ROLE_FILE = re.compile(r"^# The ALT42 heartbeat job \(|Ansible managed", re.MULTILINE)
_MACRO = re.compile(r"^@(reboot|yearly|annually|monthly|weekly|daily|midnight|hourly)$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*=")


def _script_pattern(script: str) -> re.Pattern[str]:
    return re.compile(r"(^|[\s/'\"=])" + re.escape(script) + r"($|[\s'\";|&<>)])")


def parse_entry(line: str, with_user: bool) -> dict | None:
    """``{schedule, user, command}`` of one cron line, or None for a comment, a blank or
    an environment line. ``with_user``: the system crontab and cron.d carry a user field."""
    text = line.strip()
    if not text or text.startswith("#") or _ENV.match(text):
        return None
    fields = text.split()
    count = 1 if _MACRO.match(fields[0]) else 5
    need = count + (1 if with_user else 0) + 1
    if len(fields) < need:
        return None
    parts = text.split(None, need - 1)
    return {
        "schedule": " ".join(parts[:count]),
        "user": parts[count] if with_user else None,
        "command": parts[-1],
    }


def scan(
    text: str, script: str, with_user: bool, owner: str | None = None, own_name: str | None = None
) -> list[dict]:
    """Every line of one cron table that runs ``script``, active or retired.

    ``own_name``: entries that follow ``#Ansible: <own_name>`` (the role's own, written by
    ansible.builtin.cron) are marked ``own`` and never retired.
    """
    pattern = _script_pattern(script)
    found = []
    previous = ""
    own_markers = {f"#Ansible: {own_name}", f"#Ansible: {own_name}-prune"} if own_name else set()
    for number, line in enumerate(text.splitlines(), start=1):
        active = not line.startswith(MARKER)
        entry = parse_entry(line if active else line[len(MARKER) :], with_user)
        if entry is not None and pattern.search(entry["command"]):
            found.append(
                {
                    "line": number,
                    "text": line if active else line[len(MARKER) :],
                    "schedule": entry["schedule"],
                    "user": entry["user"] or owner,
                    "command": entry["command"],
                    "active": active,
                    "own": previous.strip() in own_markers,
                }
            )
        previous = line
    return found


def retired(text: str, entries: list[dict]) -> str:
    """``text`` with the active, not-own lines of ``entries`` commented out by the marker."""
    lines = text.splitlines(keepends=True)
    for entry in entries:
        if entry["active"] and not entry["own"]:
            lines[entry["line"] - 1] = MARKER + lines[entry["line"] - 1]
    return "".join(lines)


def restored(text: str) -> str:
    """``text`` with every line the marker retired active again."""
    return "".join(
        line[len(MARKER) :] if line.startswith(MARKER) else line
        for line in text.splitlines(keepends=True)
    )


def is_role_file(text: str) -> bool:
    """Written by the role (its template's header), not by hand after the manual."""
    return _ROLE_FILE.search(text) is not None


class Table:
    """One cron table: its text now, and the text it gets."""

    def __init__(self, kind: str, target: str, before: str, text: str, owner=None, source=None):
        self.kind = kind  # "file" (system crontab, cron.d) or "crontab" (a user's)
        self.target = target  # the path, or the user
        self.before = before  # what is there now ("" for a file the module creates)
        self.text = text  # the text to transform (the manual's, for the file set aside)
        self.owner = owner
        self.source = source  # a file set aside: the file it came from
        self.after = text

    @property
    def where(self) -> str:
        return f"{self.target}'s crontab" if self.kind == "crontab" else self.target


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read()


def _cron_d_names(cron_d: str) -> list[str]:
    """The files cron reads in cron.d: names of letters, digits, _ and - (run-parts)."""
    if not os.path.isdir(cron_d):
        return []
    return sorted(
        name
        for name in os.listdir(cron_d)
        if re.fullmatch(r"[A-Za-z0-9_-]+", name) and os.path.isfile(os.path.join(cron_d, name))
    )


def _manual_backups(cron_d: str, own: str, script: str) -> list[str]:
    """Backups (``<own>.<date>~``) an earlier release of the role left of the manual's
    cron.d file when it wrote its own over it, oldest first."""
    if not os.path.isdir(cron_d):
        return []
    paths = [
        os.path.join(cron_d, name)
        for name in os.listdir(cron_d)
        if name.startswith(own + ".") and name.endswith("~")
    ]
    return sorted(
        (
            path
            for path in paths
            if not is_role_file(_read(path))
            and any(entry["active"] for entry in scan(_read(path), script, True))
        ),
        key=os.path.getmtime,
    )


class Host:
    """Reads and writes the host's cron tables."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module

    def crontab(self, user: str):
        """The user's crontab as ``crontab -l`` shows it (what ``crontab -`` takes back),
        or None when it cannot be read (a crontab left by a user who no longer exists)."""
        rc, out, err = self.module.run_command(["crontab", "-l", "-u", user])
        if rc == 0:
            return out
        if "no crontab" not in err:
            self.module.warn(f"crontab -l -u {user} failed, not looked into: {err.strip()}")
        return None

    def write(self, table: Table) -> None:
        if table.kind == "crontab":
            rc, _, err = self.module.run_command(
                ["crontab", "-u", table.target, "-"], data=table.after, binary_data=True
            )
            if rc != 0:
                self.module.fail_json(msg=f"crontab -u {table.target} - failed: {err.strip()}")
            return
        self.write_file(table.target, table.after, table.source)

    def write_file(self, path: str, text: str, like=None, mode=0o644, group=0) -> None:
        """Replace ``path`` atomically with the owner and mode of ``like`` (or of ``path``
        itself): cron skips a cron.d file that is not root's or is writable by others."""
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".alt42-heartbeat.")
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
        source = like or path
        if os.path.exists(source):
            info = os.stat(source)
            mode, owner, group = info.st_mode & 0o7777, info.st_uid, info.st_gid
        else:
            owner = 0
        os.chmod(tmp, mode)
        os.chown(tmp, owner, group)
        os.replace(tmp, path)  # atomic in one directory; keeps the mode and owner set above


ARGUMENTS = {
    "state": {
        "type": "str",
        "choices": ["report", "keep", "retire", "restore"],
        "default": "report",
    },
    "script": {"type": "str", "default": "heartbeat.php"},
    "own_name": {"type": "str", "default": "alt42-heartbeat"},
    "cron_d_dir": {"type": "path", "default": "/etc/cron.d"},
    "system_crontab": {"type": "path", "default": "/etc/crontab"},
    "spool_dir": {"type": "path", "default": "/var/spool/cron/crontabs"},
    "record": {"type": "path", "default": None},
    "record_group": {"type": "str", "default": "root"},
    "schedule": {"type": "str", "default": None},
    "warn_active": {"type": "str", "default": None},
    "warn_none": {"type": "str", "default": None},
}


def read_tables(module: AnsibleModule, host: Host) -> list:
    """Every cron table of the host as it is: /etc/crontab, cron.d, each user's crontab."""
    params = module.params
    tables = []
    if os.path.isfile(params["system_crontab"]):
        text = _read(params["system_crontab"])
        tables.append(Table("file", params["system_crontab"], text, text))
    for name in _cron_d_names(params["cron_d_dir"]):
        text = _read(os.path.join(params["cron_d_dir"], name))
        tables.append(Table("file", os.path.join(params["cron_d_dir"], name), text, text))
    spool = params["spool_dir"]
    for user in sorted(os.listdir(spool)) if os.path.isdir(spool) else []:
        text = host.crontab(user) if os.path.isfile(os.path.join(spool, user)) else None
        if text is not None:
            tables.append(Table("crontab", user, text, text, owner=user))
    return tables


def set_aside(module: AnsibleModule, tables: list, own_file: str) -> tuple:
    """The manual's cron.d file under the role's own name (or the backup an earlier
    release of the role left of it) moves to a name of its own, so that the role can
    write its file; a backup did not run, so it moves retired.

    Returns the tables then, the files to remove and the file set aside (or None)."""
    script, manual_file = module.params["script"], own_file + MANUAL_SUFFIX
    own = next((t for t in tables if t.target == own_file), None)
    if own is not None and not is_role_file(own.text) and scan(own.text, script, True):
        aside, removed = Table("file", manual_file, "", own.text, source=own_file), [own]
    else:
        backups = _manual_backups(os.path.dirname(own_file), os.path.basename(own_file), script)
        if not backups:
            return tables, [], None
        text = _read(backups[-1])
        aside = Table("file", manual_file, "", retired(text, scan(text, script, True)))
        aside.source = backups[-1]
        removed = [Table("file", path, _read(path), "") for path in backups]
    if module.params["state"] == "report":
        return tables, [], None
    for table in removed:
        table.after = ""
    if any(t.target == manual_file for t in tables):
        module.fail_json(
            msg=f"{aside.source} holds the PHP job's schedule, but {manual_file} (where the"
            " role sets it aside) exists already: merge the two by hand, then run again"
        )
    return _in_order([t for t in tables if t not in removed] + [aside]), removed, aside


def _in_order(tables: list) -> list:
    """Files by path, then crontabs by user: the order of the report and of the record,
    the same whether a file was just set aside or found there (idempotence)."""
    return sorted(tables, key=lambda t: (t.kind == "crontab", t.target))


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENTS, supports_check_mode=True)
    params = module.params
    state, script, own_name = params["state"], params["script"], params["own_name"]
    own_file = os.path.join(params["cron_d_dir"], own_name)
    host = Host(module)
    tables, removed, aside = set_aside(module, _in_order(read_tables(module, host)), own_file)

    # The text each table gets, and what runs the script then.
    found, own_schedules = [], []
    for table in tables:
        role_file = table.target == own_file and is_role_file(table.text)
        if state == "retire":
            table.after = retired(
                table.text, _entries(table, table.text, script, own_name, role_file)
            )
        elif state == "restore":
            table.after = restored(table.text)
        for entry in _entries(table, table.after, script, own_name, role_file):
            found.append(dict(entry, where=f"{table.where}, line {entry['line']}"))
        if role_file:
            own_schedules.append(_first_schedule(table.text, True, None))
        if table.kind == "crontab":
            own_schedules.append(_first_schedule(table.text, False, f"#Ansible: {own_name}"))
    changed = [t for t in tables if t.after != t.before]
    php = [e for e in found if not e["own"]]
    active = [e for e in php if e["active"]]
    own_schedule = next((s for s in own_schedules if s), None)
    schedule = _resolve_schedule(module, params["schedule"], php, own_schedule)

    if not module.check_mode:
        for table in changed:
            host.write(table)
        for table in removed:
            if os.path.exists(table.target):
                os.unlink(table.target)
    record_changed = bool(params["record"]) and _write_record(module, host, found)
    if active and params["warn_active"]:
        module.warn(f"{params['warn_active']}: " + "; ".join(_describe(e) for e in active))
    if not active and params["warn_none"]:
        module.warn(params["warn_none"])
    module.exit_json(
        changed=bool(changed or removed or record_changed),
        schedules=found,
        active=[_describe(e) for e in active],
        retired=[_describe(e) for e in php if not e["active"]],
        schedule=schedule,
        own_schedule=own_schedule,
        set_aside=[f"{aside.source} -> {aside.target}"] if aside is not None else [],
        diff=[
            {
                "before_header": t.where,
                "after_header": t.where,
                "before": t.before,
                "after": t.after,
            }
            for t in changed + removed
        ],
    )


def _entries(table: Table, text: str, script: str, own_name: str, role_file: bool) -> list:
    """The lines of ``text`` (one version of ``table``) that run the script; all of them
    the role's own in its own cron.d file (runtime php)."""
    crontab = table.kind == "crontab"
    entries = scan(text, script, not crontab, table.owner, own_name if crontab else None)
    return [dict(e, own=True) for e in entries] if role_file else entries


def _describe(entry: dict) -> str:
    """``root's crontab, line 2: */15 * * * * as root``."""
    return f"{entry['where']}: {entry['schedule']} as {entry['user']}"


def _resolve_schedule(module: AnsibleModule, wanted, php: list, own_schedule):
    """``adopt`` -> the PHP job's schedule (active or retired lines), else the role's
    existing entry's; another value as it is, with a warning for an active PHP line at
    another schedule (the admin's choice would otherwise be lost without a word)."""
    if wanted is None:
        return None
    schedules = sorted({e["schedule"] for e in php})
    if wanted.strip() != "adopt":
        for entry in php:
            if entry["active"] and entry["schedule"].split() != wanted.split():
                module.warn(
                    f"the PHP job runs at '{entry['schedule']}' ({entry['where']}), the role's"
                    f" schedule is '{wanted.strip()}': the job runs at the role's from now on;"
                    " to keep the site's, set alt42_heartbeat_cron_schedule: adopt"
                )
        return wanted
    if len(schedules) == 1:
        return schedules[0]
    if len(schedules) > 1:
        module.fail_json(
            msg="alt42_heartbeat_cron_schedule is 'adopt', but the PHP job has several"
            " schedules here (" + "; ".join(_describe(e) for e in php) + "): set the one to keep"
        )
    if own_schedule:
        return own_schedule
    module.fail_json(
        msg="alt42_heartbeat_cron_schedule is 'adopt', but no schedule of the PHP job was found"
        f" (looked in {module.params['system_crontab']}, {module.params['cron_d_dir']} and every"
        f" crontab in {module.params['spool_dir']}) and the role has none yet: set a schedule,"
        " e.g. '*/30 * * * *'"
    )


def _first_schedule(text: str, with_user: bool, after: str | None) -> str | None:
    """The schedule of the first entry of ``text`` (or of the one right after the line
    ``after``): the role's own job line, which its template and its cron task write first."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if after is not None and (index == 0 or lines[index - 1].strip() != after):
            continue
        entry = parse_entry(line, with_user)
        if entry is not None:
            return entry["schedule"]
    return None


def _write_record(module: AnsibleModule, host: Host, found: list) -> bool:
    """What ``alt42-heartbeat status`` names when the PHP job's rows keep arriving."""
    path, group = module.params["record"], module.params["record_group"]
    keys = ("where", "schedule", "user", "active", "own")
    text = json.dumps(
        {"php_schedules": [{key: e[key] for key in keys} for e in found]}, indent=1, sort_keys=True
    )
    if os.path.exists(path) and _read(path) == text + "\n":
        return False
    if not module.check_mode:
        host.write_file(path, text + "\n", mode=0o640, group=grp.getgrnam(group).gr_gid)
    return True


if __name__ == "__main__":
    main()
