"""The Molecule scenarios' paths, checked without a container: a moved directory (molecule/
-> extensions/molecule/) once left the shared verifier pointing at extensions/, which only
a 7-minute scenario run showed. These take a second and name the path that is wrong."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

MOLECULE = ROOT / "extensions" / "molecule"
SCENARIOS = sorted(p.parent for p in MOLECULE.glob("*/molecule.yml"))


def test_the_shared_verifier_helpers_find_the_project_root() -> None:
    spec = importlib.util.spec_from_file_location(
        "alt42_expect", MOLECULE / "shared" / "tests" / "alt42_expect.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    assert module.PROJECT_DIR == ROOT
    assert (module.PROJECT_DIR / "heartbeat" / "__init__.py").is_file()
    assert (module.SHARED_DIR / "converge.yml").is_file()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_every_path_a_scenario_names_exists(scenario: Path) -> None:
    config = yaml.safe_load((scenario / "molecule.yml").read_text(encoding="utf-8"))
    playbooks = config.get("ansible", {}).get("playbooks", {})
    missing = [
        f"ansible.playbooks.{step}: {name}"
        for step, name in playbooks.items()
        if not (scenario / name).is_file()
    ]
    # testinfra's extra files are relative to the scenario's tests/ directory, which
    # need not exist (Molecule normalises the path).
    extra = config.get("verifier", {}).get("additional_files_or_dirs", [])
    missing += [
        f"verifier.additional_files_or_dirs: {name}"
        for name in extra
        if not Path(os.path.normpath(scenario / "tests" / name)).exists()
    ]
    assert not missing, f"{scenario.name}/molecule.yml names paths that do not exist"


PROJECT_PATH = re.compile(r'(?:playbook=|PROJECT_DIR / )"([^"]+)"')


def test_every_project_path_a_molecule_test_names_exists() -> None:
    named = {
        (test.relative_to(ROOT), path)
        for test in MOLECULE.glob("*/tests/*.py")
        for path in PROJECT_PATH.findall(test.read_text(encoding="utf-8"))
    }
    assert len(named) >= 4, "the pattern must still find the tests' project paths"
    missing = sorted((str(t), p) for t, p in named if not (ROOT / p).exists())
    assert not missing
