"""The monitoring hooks, called alike: the dead-man's switch ping (``heartbeat.ping``),
the node_exporter textfile (``heartbeat.metrics``) and the failure mail
(``heartbeat.mail``).

Each is a module with the same function, ``notify(config, state, run, dry_run)``, as
borgmatic's monitoring hooks are: it is told when a run starts (``start``, once this
server claimed the slot), when it ended with a summary (``finish``: success, partial,
skipped) and when it ended with an error (``fail``). A hook acts on the states it cares
about, reports its own failures in its own words, and does nothing for a dry run. A
monitor must never change a run's outcome: the dispatcher also catches what a hook did
not foresee.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Optional

from heartbeat import mail, metrics, ping
from heartbeat.errors import HeartbeatError

if TYPE_CHECKING:
    from heartbeat.config import Config
    from heartbeat.run import RunSummary

log = logging.getLogger(__name__)

State = Literal["start", "finish", "fail"]


@dataclass(frozen=True)
class Run:
    """What a hook is told about a run. ``summary`` is the run's own for ``finish``, and
    for ``fail`` one that says only failed or aborted; ``exit_code`` is the command's."""

    run_id: str = ""
    summary: Optional[RunSummary] = None
    exit_code: int = 0
    error: str = ""  # fail: the one line the run ended with
    transcript: tuple[str, ...] = field(default=(), repr=False)  # what the run printed
    log_hint: str = ""  # where the whole output went

    @property
    def ran(self) -> bool:
        """The run did the work (not skipped: another server or an earlier start did)."""
        return self.summary is not None and self.summary.status not in ("skipped", "dry_run")


#: Called in this order: the ping first (the monitor's clock is the most urgent).
HOOKS = (ping, metrics, mail)


def notify(config: Config, state: State, run: Run, dry_run: bool) -> None:
    """Tell every hook; none of them can fail the run."""
    for hook in HOOKS:
        try:
            hook.notify(config, state, run, dry_run)
        except HeartbeatError:
            raise  # a signal (Interrupted) or the time limit: the command's, not the hook's
        except Exception as exc:  # noqa: BLE001 - a monitoring hook never changes the outcome
            name = hook.__name__.rsplit(".", 1)[-1]
            log.warning(
                "Monitoring hook %s failed (%s: %s); the run itself is not affected",
                name,
                type(exc).__name__,
                exc,
            )
