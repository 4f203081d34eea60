#!/usr/bin/env python3
"""Build (or find, when up to date) the wheels the role ships, on the controller.

    python3 wheels.py --source PROJECT_DIR --out WHEELS_DIR

The project's wheel is built from the source next to the role (its digest is kept in
``WHEELS_DIR/.source-sha256``: an unchanged source is not rebuilt), PyMySQL's and
pip's pure-Python wheels are downloaded once (they serve every target Python from 3.9).
Prints one JSON object: ``changed``, ``version``, ``wheels`` (file names) and ``digest``
(of the wheel set: the release id on the targets). Exits 1 with one line on stderr when
the controller cannot build them.

Run by the role (tasks/wheels.yml) with the controller's own Python, and by
``scripts/build-wheels``. Standard library and pip only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import NoReturn, Optional

OWN = "alt42_heartbeat"
DEPENDENCIES = ("PyMySQL>=1.2.1,<2", "pip")


def fail(message: str) -> NoReturn:
    sys.stderr.write(f"wheels: {message}\n")
    raise SystemExit(1)


def source_digest(source: Path) -> str:
    """What the project's wheel is built from: pyproject.toml and the package."""
    digest = hashlib.sha256()
    files = [source / "pyproject.toml", *sorted((source / "heartbeat").rglob("*"))]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def version_of(source: Path) -> str:
    text = (source / "heartbeat" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if not match:
        fail(f"{source}/heartbeat/__init__.py has no __version__")
    return match.group(1)


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this very interpreter's pip, our own arguments
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def same_content(a: Path, b: Path) -> bool:
    """Two wheels with the same files (a rebuild differs in zip timestamps only)."""

    def files(path: Path) -> list[tuple[str, str]]:
        with zipfile.ZipFile(path) as archive:
            return sorted(
                (name, hashlib.sha256(archive.read(name)).hexdigest())
                for name in archive.namelist()
            )

    return files(a) == files(b)


def build_own(source: Path, out: Path, version: str, digest: str) -> bool:
    """The project's wheel in ``out``; True when it changed."""
    target = out / f"{OWN}-{version}-py3-none-any.whl"
    stamp = out / ".source-sha256"
    if target.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return False
    if pip("--version").returncode != 0:
        fail(
            f"the controller's Python ({sys.executable}) has no pip, so the wheels cannot be"
            " built: install pip for it (Debian: apt install python3-pip), or build them"
            " elsewhere (scripts/build-wheels) into alt42_heartbeat_wheels_dir"
        )
    with tempfile.TemporaryDirectory() as tmp:
        # With a fitting setuptools at hand no build environment is fetched (an offline
        # controller); else pip fetches one in the range pyproject.toml names.
        isolation = ["--no-build-isolation"] if _setuptools_fits(source) else []
        result = pip("wheel", "-q", "--no-deps", *isolation, "-w", tmp, str(source))
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            hint = (
                ""
                if isolation
                else (
                    f"; this Python has no setuptools {describe_range(source)}, so pip fetched"
                    " one from PyPI: give the controller PyPI, install such a setuptools for"
                    f" {sys.executable}, or build the wheels elsewhere (scripts/build-wheels,"
                    " scripts/build-collection) into alt42_heartbeat_wheels_dir"
                )
            )
            fail(f"building the {OWN} wheel from {source} failed: {last}{hint}")
        built = next(Path(tmp).glob(f"{OWN}-*.whl"))
        changed = not (target.exists() and same_content(built, target))
        if changed:
            shutil.copyfile(built, target)
    for stale in out.glob(f"{OWN}-*.whl"):
        if stale != target:
            stale.unlink()
    shutil.rmtree(source / "build", ignore_errors=True)
    for egg in source.glob("*.egg-info"):
        shutil.rmtree(egg, ignore_errors=True)
    stamp.write_text(digest + "\n")
    return changed


def setuptools_range(source: Path) -> tuple[tuple[int, ...], Optional[tuple[int, ...]]]:
    """The setuptools versions the build is tested with, [low, high), as pyproject.toml's
    ``requires`` states them (``setuptools>=77.0.3,<85``): the one place they are named.
    A release before 1.0.0 (a roll back to it, an upgrade from it) names only a lowest
    version (``setuptools>=61``): high is None."""
    text = (source / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'"setuptools>=([0-9.]+)(?:,<([0-9.]+))?"', text)
    if match is None:
        fail(f"{source}/pyproject.toml: [build-system] requires names no setuptools version")
    low = tuple(int(part) for part in match.group(1).split("."))
    high = None if match.group(2) is None else tuple(int(p) for p in match.group(2).split("."))
    return low, high


def describe_range(source: Path) -> str:
    """``>=77.0.3,<85`` (or ``>=61``), as pyproject.toml says it."""
    low, high = setuptools_range(source)
    below = "" if high is None else ",<" + ".".join(map(str, high))
    return ">=" + ".".join(map(str, low)) + below


def _setuptools_fits(source: Path) -> bool:
    """Whether this Python's own setuptools is in that range (Debian 13's 78 is; Debian
    11's 52 and 12's 66 read no SPDX license, so pip builds in an isolated environment)."""
    # bdist_wheel: setuptools' own from 70.1, before that the wheel package's
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib.util, setuptools; print(setuptools.__version__,"
            " importlib.util.find_spec('wheel') is not None)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        return False
    version, has_wheel = probe.stdout.split()
    found = tuple(int(p) for p in re.findall(r"[0-9]+", version)[:3])
    low, high = setuptools_range(source)
    builds_wheels = found >= (70, 1) or has_wheel == "True"
    return builds_wheels and low <= found and (high is None or found < high)


def fetch_dependencies(out: Path, pymysql: str) -> bool:
    """PyMySQL's and pip's wheels, downloaded once; True when something was fetched."""
    missing = [name for name in ("pymysql", "pip") if not _wheels_named(out, name)]
    if not missing:
        return False
    specs = [pymysql if n == "pymysql" else "pip" for n in missing]
    with tempfile.TemporaryDirectory() as tmp:
        result = pip(
            "download", "-q", "--only-binary=:all:", "--no-deps", "--python-version", "3.9",
            "--implementation", "py", "--abi", "none", "--platform", "any", "-d", tmp, *specs,
        )  # fmt: skip
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            fail(
                f"downloading {', '.join(specs)} failed ({last}): the controller needs PyPI"
                f" once, or put their wheels into {out}"
            )
        for wheel in Path(tmp).glob("*.whl"):
            shutil.copyfile(wheel, out / wheel.name)
    return True


def pymysql_spec(source: Path) -> str:
    """The PyMySQL the project is developed and tested with (requirements-dev.txt), else
    the range pyproject.toml allows."""
    pins = source / "requirements-dev.txt"
    if pins.is_file():
        match = re.search(r"^PyMySQL==\S+", pins.read_text(encoding="utf-8"), re.MULTILINE | re.I)
        if match:
            return match.group(0)
    return DEPENDENCIES[0]


def _wheels_named(out: Path, name: str) -> list[Path]:
    return [w for w in out.glob("*.whl") if w.name.split("-")[0].lower() == name]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    source, out = args.source.resolve(), args.out
    if not (source / "pyproject.toml").is_file() or not (source / "heartbeat").is_dir():
        fail(f"{source} is not the alt42-heartbeat source (no pyproject.toml and heartbeat/)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create {out}: {exc.strerror}; set alt42_heartbeat_wheels_dir")
    version = version_of(source)
    changed = build_own(source, out, version, source_digest(source))
    changed = fetch_dependencies(out, pymysql_spec(source)) or changed
    wheels = sorted(w.name for w in out.glob("*.whl"))
    digest = hashlib.sha256()
    for name in wheels:
        digest.update(name.encode() + b"\0" + hashlib.sha256((out / name).read_bytes()).digest())
    json.dump(
        {"changed": changed, "version": version, "wheels": wheels, "digest": digest.hexdigest()},
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
