"""Dead-man's switch pings (healthchecks.io-compatible), never failing the run.

``<url>/start`` when a run starts, ``<url>`` on success, ``<url>/fail`` or
``<url>/<exit code>`` otherwise, each with ``?rid=<run id>`` so the monitor pairs start
and end. Short timeouts and a couple of retries; a monitor that is down costs at most a
few seconds and one line in the log, never the run.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Optional

from heartbeat.errors import EXIT_OK, HeartbeatError

if TYPE_CHECKING:
    from heartbeat.config import Config
    from heartbeat.hooks import Run, State

log = logging.getLogger(__name__)


def notify(config: Config, state: State, run: Run, dry_run: bool) -> None:
    """The monitoring hook (``heartbeat.hooks``): ``start``; on ``finish`` of a run that
    did the work, success or its exit code; on ``fail``, its exit code and error line."""
    monitoring = config.monitoring
    if dry_run or not monitoring.ping_url:
        return
    if state == "start":
        event, body = "start", ""
    elif state == "fail":
        event, body = str(run.exit_code), run.error
    elif run.ran and run.summary is not None:
        code = run.summary.exit_code
        event, body = ("success" if code == EXIT_OK else str(code)), ""
    else:
        return
    send(
        monitoring.ping_url,
        event,
        run.run_id,
        timeout=monitoring.ping_timeout_seconds,
        retries=monitoring.ping_retries,
        body=body,
    )


def ping_url(base: str, event: str, run_id: str) -> str:
    """The URL for ``event``: ``start``, ``success``, ``fail`` or an exit code."""
    base = base.rstrip("/")
    suffix = "" if event == "success" else f"/{event}"
    return f"{base}{suffix}?{urllib.parse.urlencode({'rid': run_id})}"


def send(
    base: Optional[str],
    event: str,
    run_id: str,
    timeout: float = 5.0,
    retries: int = 2,
    body: str = "",
) -> bool:
    """Ping the monitor; True when it answered 2xx. Failures are reported, not raised."""
    if not base:
        return False
    url = ping_url(base, event, run_id)
    data = body.encode("utf-8")[:10000]
    problem = ""
    for attempt in range(retries + 1):
        try:
            request = urllib.request.Request(url, data=data, method="POST")  # noqa: S310
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                if 200 <= response.status < 300:
                    return True
                problem = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            problem = str(getattr(exc, "reason", exc))
        except HeartbeatError:
            raise  # SIGTERM/SIGINT while waiting for the monitor: the run stops as anywhere
        # Not all of http.client's errors are OSError: a server that answers something
        # other than HTTP (BadStatusLine), a URL it cannot parse (InvalidURL, ValueError).
        # A monitor must never change a run's outcome.
        except Exception as exc:  # noqa: BLE001
            problem = f"{type(exc).__name__}: {exc}"
        if attempt < retries:
            time.sleep(min(1.0 * (attempt + 1), 3.0))
    log.warning("Monitor ping '%s' failed (%s); the run itself is not affected", event, problem)
    return False
