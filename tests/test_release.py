"""One version everywhere (the job, its wheel, the collection, the changelog), and the
collection alt42.heartbeat as Ansible users install it."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from heartbeat import __version__
from tests.conftest import ROOT, run_cli


def tool(name: str) -> str:
    """An Ansible command of this Python's environment (the pinned .venv), also when
    pytest runs without .venv/bin on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


SEMVER = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


def galaxy_version() -> str:
    text = (ROOT / "galaxy.yml").read_text(encoding="utf-8")
    match = re.search(r"^version: (\S+)$", text, re.MULTILINE)
    assert match, "galaxy.yml has no version"
    return match.group(1)


def test_every_place_says_the_same_version() -> None:
    assert SEMVER.fullmatch(__version__), __version__
    assert galaxy_version() == __version__
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    newest = re.search(r"^## \[([^]]+)\] - \d{4}-\d{2}-\d{2}$", changelog, re.MULTILINE)
    assert newest and newest.group(1) == __version__
    assert f"[{__version__}]: " in changelog  # its compare link
    assert run_cli("--version").stdout.strip() == f"alt42-heartbeat {__version__}"


def test_every_place_says_the_same_oldest_ansible_core() -> None:
    """The collection's requires_ansible, the role's meta and the preflight check that
    stops an older controller with one line: three places, one figure."""
    runtime = (ROOT / "meta/runtime.yml").read_text(encoding="utf-8")
    meta = (ROOT / "roles/alt42_heartbeat/meta/main.yml").read_text(encoding="utf-8")
    internal = (ROOT / "roles/alt42_heartbeat/vars/main.yml").read_text(encoding="utf-8")
    figures = {
        re.search(r'^requires_ansible: ">=(\d+\.\d+)\.0"$', runtime, re.MULTILINE),
        re.search(r'^  min_ansible_version: "(\d+\.\d+)"$', meta, re.MULTILINE),
        re.search(r'^__alt42_heartbeat_min_ansible: "(\d+\.\d+)"$', internal, re.MULTILINE),
    }
    assert None not in figures
    assert len({match.group(1) for match in figures if match}) == 1


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collection")
    subprocess.run(
        [
            tool("ansible-galaxy"),
            "collection",
            "build",
            "--force",
            "--output-path",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [artifact] = out.glob("alt42-heartbeat-*.tar.gz")
    return artifact


def test_the_collection_carries_the_role_the_playbooks_and_the_job(collection: Path) -> None:
    assert collection.name == f"alt42-heartbeat-{__version__}.tar.gz"
    with tarfile.open(collection) as archive:
        names = set(archive.getnames())
    for wanted in (
        "MANIFEST.json",
        "meta/runtime.yml",
        "roles/alt42_heartbeat/tasks/main.yml",
        "roles/alt42_heartbeat/files/wheels.py",
        "playbooks/heartbeat.yml",
        "playbooks/run_once.yml",
        "heartbeat/__init__.py",
        "heartbeat/rulebook.json",
        "pyproject.toml",
        "CHANGELOG.md",
        # what the role drops for monitoring (tasks/monitoring.yml reads them from here)
        "monitoring/prometheus/alt42-heartbeat.rules.yml",
        "monitoring/nagios/nrpe.cfg",
        "monitoring/sudoers/alt42-heartbeat",
    ):
        assert wanted in names, wanted
    for unwanted in ("tests", "extensions", ".venv", "bench", "scripts", ".git"):
        assert not any(n == unwanted or n.startswith(unwanted + "/") for n in names), unwanted


def test_the_installed_collection_is_used_by_its_fqcn(collection: Path, tmp_path: Path) -> None:
    installed = tmp_path / "collections"
    subprocess.run(
        [tool("ansible-galaxy"), "collection", "install", str(collection), "-p", str(installed)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    playbook = tmp_path / "site.yml"
    playbook.write_text(
        "- name: The heartbeat from the collection\n"
        "  hosts: all\n"
        "  roles:\n"
        "    - role: alt42.heartbeat.alt42_heartbeat\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [tool("ansible-playbook"), "-i", "localhost,", "--syntax-check", str(playbook)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"ANSIBLE_COLLECTIONS_PATH": str(installed), "PATH": str(Path(ROOT / ".venv/bin"))
             + ":/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    root = installed / "ansible_collections" / "alt42" / "heartbeat"
    assert (root / "heartbeat" / "__init__.py").is_file()  # the role builds from it
    assert (root / "roles" / "alt42_heartbeat" / ".." / ".." / "pyproject.toml").is_file()


def test_the_site_is_migrated_by_its_first_host_in_play_order(tmp_path: Path) -> None:
    """The host that migrates a site is the first of the site's hosts in inventory order,
    whatever order group_by's results arrived in. Here `a` (first in the inventory) joins
    its site's group after `b` (a play of its own for each), which is what parallel forks
    do now and then: CI once saw the cluster scenario migrate on b."""
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[moodle]\na ansible_connection=local\nb ansible_connection=local\n", "utf-8"
    )
    playbook = tmp_path / "migrator.yml"
    playbook.write_text(
        f"""
- name: B joins its site's group first
  hosts: b
  gather_facts: false
  tasks: &group_by_site
    - name: The role's own variables
      ansible.builtin.include_vars:
        file: {ROOT / "roles/alt42_heartbeat/vars/main.yml"}
    - name: What `check --config-only` prints on both
      ansible.builtin.set_fact:
        __alt42_heartbeat_site:
          stdout: "Host lock: /run/lock/alt42-heartbeat-moodle-0123456789ab.lock"
    - name: Group by site as the role does
      ansible.builtin.group_by:
        key: "alt42_heartbeat_site_{{{{ __alt42_heartbeat_site_id }}}}"
- name: Then a
  hosts: a
  gather_facts: false
  tasks: *group_by_site
- name: Ask the role who migrates
  hosts: moodle
  gather_facts: false
  tasks:
    - name: The group's order and the migrator
      ansible.builtin.debug:
        msg: "group={{{{ groups['alt42_heartbeat_site_' ~ __alt42_heartbeat_site_id]
          | join(',') }}}} migrator={{{{ __alt42_heartbeat_site_migrator }}}}"
""",
        encoding="utf-8",
    )
    result = subprocess.run(
        [tool("ansible-playbook"), "-i", str(inventory), str(playbook)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": str(ROOT / ".venv/bin") + ":/usr/bin:/bin", "HOME": str(tmp_path),
             "ANSIBLE_PYTHON_INTERPRETER": sys.executable},
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert out.count("group=b,a migrator=a") == 2, out


def copy_source(tmp_path: Path) -> Path:
    """What the wheel is built from, outside the checkout (pip builds in place)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        (source / name).write_bytes((ROOT / name).read_bytes())
    shutil.copytree(ROOT / "heartbeat", source / "heartbeat",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return source


def test_the_wheel_states_its_license_the_way_current_setuptools_reads_it(tmp_path: Path) -> None:
    """Built as the role builds it on a controller whose setuptools is older than the
    range (.venv's, Debian 11's and 12's): in an isolated environment from that range. The
    wheel names the license as an SPDX expression and carries its text, and setuptools
    warns about nothing (the table form's warning said it stops building in 2027)."""
    source = copy_source(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path / "out"),
         str(source)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "deprecated" not in (result.stdout + result.stderr).lower()
    [wheel] = (tmp_path / "out").glob("alt42_heartbeat-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(info).decode()
    assert "License-Expression: GPL-3.0-or-later" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata.splitlines()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "GNU GENERAL PUBLIC LICENSE" in (ROOT / "LICENSE").read_text(encoding="utf-8")[:200]


def test_the_role_builds_with_the_controllers_setuptools_only_in_the_tested_range() -> None:
    spec = importlib.util.spec_from_file_location(
        "wheels", ROOT / "roles/alt42_heartbeat/files/wheels.py"
    )
    assert spec and spec.loader
    wheels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wheels)
    low, high = wheels.setuptools_range(ROOT)
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"setuptools>={".".join(map(str, low))},<{".".join(map(str, high))}"' in pyproject
    assert low <= (77, 0, 3) < high  # the first setuptools that reads an SPDX license


OFFLINE_PIP = {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/",
               "PIP_NO_INDEX": "", "PIP_FIND_LINKS": "", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2",
               "PIP_NO_CACHE_DIR": "1"}  # fmt: skip


def test_an_older_release_still_builds_for_an_upgrade_or_a_roll_back(tmp_path: Path) -> None:
    """A release before 1.0.0 names only a lowest setuptools (``>=61``), no range: the
    role still builds it (the upgrade scenario installs 0.1.0 so; a roll back to 0.5.0
    goes the same way). .venv's setuptools 65 has no bdist_wheel of its own (no wheel
    package either), so pip builds in an isolated environment, as 0.x's role did."""
    scenario = (ROOT / "extensions/molecule/upgrade/molecule.yml").read_text(encoding="utf-8")
    commit = re.search(r"alt42_upgrade_from_commit: (\w+)", scenario)
    assert commit, "the upgrade scenario names the old release's commit"
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{commit[1]}^{{commit}}"],
                      check=False).returncode != 0:  # fmt: skip
        pytest.skip("a shallow clone: the old release is not in the history")
    source = tmp_path / "old"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit[1]],
                             capture_output=True, timeout=60, check=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, timeout=60, check=True)
    assert '"setuptools>=61"' in (source / "pyproject.toml").read_text(encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(ROOT / "roles/alt42_heartbeat/files/wheels.py"), "--source",
         str(source), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "out").glob("alt42_heartbeat-0.1.0-py3-none-any.whl"))


def test_a_controller_without_pypi_or_a_fitting_setuptools_is_told_its_three_ways(
    tmp_path: Path,
) -> None:
    """.venv's setuptools (65) is older than the range, so pip must fetch one; with no
    index reachable the role's build stops with one line that says what to do."""
    env = {**os.environ, **OFFLINE_PIP}
    result = subprocess.run(
        [sys.executable, str(ROOT / "roles/alt42_heartbeat/files/wheels.py"), "--source",
         str(copy_source(tmp_path)), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("wheels: building the alt42_heartbeat wheel from ")
    assert "this Python has no setuptools >=77.0.3,<85, so pip fetched one from PyPI" in line
    assert "alt42_heartbeat_wheels_dir" in line
