"""Filter ``alt42_heartbeat_timer``: what the systemd timer and service of a cron schedule
need, computed by the job's own code (heartbeat/schedule.py, heartbeat/config.py), which
the collection carries beside its plugins: one owner of what a schedule means."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: alt42_heartbeat_timer
short_description: The OnCalendar= lines and time limit of a cron schedule
description:
  - Translates a cron expression (five fields or a macro) into systemd OnCalendar= lines
    that fire at exactly the same minutes, and gives the run's time limit in minutes
    (max_run_minutes, or the job's default for the schedule's interval).
options:
  _input:
    description: The cron expression.
    type: str
    required: true
  max_run_minutes:
    description: The job's [heartbeat] max_run_minutes; 0 or none for its default.
    type: int
"""

# The job's source: <collection>/heartbeat, two levels above plugins/filter (the role
# links this file; resolve() follows the link).
_SOURCE = Path(__file__).resolve().parents[2]


def alt42_heartbeat_timer(expression: str, max_run_minutes: Any = 0) -> dict[str, Any]:
    if not (_SOURCE / "heartbeat" / "schedule.py").is_file():
        raise AnsibleFilterError(f"alt42_heartbeat_timer: the job's source is not in {_SOURCE}")
    if str(_SOURCE) not in sys.path:
        sys.path.insert(0, str(_SOURCE))
    from heartbeat.config import default_max_run  # noqa: PLC0415 - after the path is known
    from heartbeat.errors import ConfigError  # noqa: PLC0415
    from heartbeat.schedule import on_calendar, parse_schedule  # noqa: PLC0415

    try:
        schedule = parse_schedule(str(expression), "alt42_heartbeat_cron_schedule")
    except ConfigError as exc:
        raise AnsibleFilterError(str(exc)) from None
    limit = int(max_run_minutes or 0) or default_max_run(schedule.shortest_gap_minutes())
    return {"on_calendar": on_calendar(schedule), "max_run_minutes": limit}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"alt42_heartbeat_timer": alt42_heartbeat_timer}
