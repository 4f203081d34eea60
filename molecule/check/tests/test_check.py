"""Check mode on a fresh host: the converge (with --check) succeeded and wrote nothing."""

from __future__ import annotations

import json
import os
import subprocess

import alt42_expect as x
import pytest

CONTAINER = "alt42-molecule-check"
# What an Ansible run over the podman connection may leave behind by itself.
ALLOWED = ("/root/.ansible", "/tmp", "/var/tmp", "/run", "/dev", "/proc", "/sys")


@pytest.mark.parametrize(
    "path", [x.CRON_FILE, x.LOGROTATE_FILE, x.CONFIG_FILE, "/etc/alt42", x.INSTALL_DIR, x.LOG_DIR]
)
def test_nothing_was_created(host, path):
    assert not host.file(path).exists, path


def test_no_crontab_for_www_data(host):
    assert host.run("crontab -l -u www-data").rc != 0


def allowed(path: str) -> bool:
    if "/__pycache__/" in path or path.endswith("/__pycache__"):
        return True  # Python's byte-code cache of modules Ansible imported
    if any(path == a or path.startswith(a + "/") for a in ALLOWED):
        return True
    # A changed directory on the way to an allowed path (e.g. /root for /root/.ansible).
    return any(a.startswith(path.rstrip("/") + "/") for a in ALLOWED)


def test_filesystem_unchanged_against_the_image():
    """`podman diff`: the container's files against its image, after the check-mode run."""
    out = subprocess.run(
        ["podman", "diff", "--format", "json", CONTAINER],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ,
    ).stdout
    diff = json.loads(out or "{}")
    changes = [
        f"{kind} {path}"
        for kind, paths in diff.items()
        for path in paths or []
        if not allowed(path)
    ]
    assert changes == []
