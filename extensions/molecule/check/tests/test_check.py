"""Check mode on a fresh host: the converge (with --check) succeeded and wrote nothing."""

from __future__ import annotations

import json
import os
import subprocess

import alt42_expect as x
import pytest

CONTAINER = "alt42-molecule-check"
# What an Ansible run over the podman connection may leave behind by itself, and apt's
# binary package caches (rebuilt when the package module reads the package lists).
ALLOWED = ("/root/.ansible", "/tmp", "/var/tmp", "/run", "/dev", "/proc", "/sys")
ALLOWED_FILES = ("/var/cache/apt/pkgcache.bin", "/var/cache/apt/srcpkgcache.bin")


@pytest.mark.parametrize(
    "path", [x.CRON_FILE, x.LOGROTATE_FILE, x.CONFIG_FILE, "/etc/alt42", x.INSTALL_DIR, x.LOG_DIR]
)
def test_nothing_was_created(host, path):
    assert not host.file(path).exists, path


def test_no_crontab_for_www_data(host):
    assert host.run("crontab -l -u www-data").rc != 0


def podman(*args: str) -> str:
    return subprocess.run(
        ["podman", *args], check=True, capture_output=True, text=True, env=os.environ
    ).stdout.strip()


def diff_of(container: str) -> set[tuple[str, str]]:
    """`podman diff`: (kind, path) of what differs from the image."""
    diff = json.loads(podman("diff", "--format", "json", container) or "{}")
    return {(kind, path) for kind, paths in diff.items() for path in paths or []}


def allowed(path: str) -> bool:
    if "/__pycache__/" in path or path.endswith("/__pycache__") or path in ALLOWED_FILES:
        return True  # byte-code of modules Ansible imported, apt's binary caches
    return any(path == a or path.startswith(a + "/") for a in ALLOWED)


def test_filesystem_unchanged_against_the_image():
    """The container's files against its image after the check-mode run, minus what a
    fresh container of the same image already shows (podman's own /etc mounts)."""
    image = podman("inspect", "--format", "{{.ImageName}}", CONTAINER)
    fresh = podman("run", "-d", "--rm", "--init", image, "sleep", "60")
    try:
        baseline = diff_of(fresh)
    finally:
        podman("rm", "-f", "-t", "0", fresh)
    entries = diff_of(CONTAINER) - baseline
    paths = {path for _, path in entries}
    changes = sorted(
        f"{kind} {path}"
        for kind, path in entries
        if not allowed(path)
        # a changed directory that only holds other entries of the diff
        and not (kind == "changed" and any(p.startswith(path + "/") for p in paths))
    )
    assert not changes, "changed on disk:\n" + "\n".join(changes)
