"""Packaging: the sdist carries the whole test suite, the wheel every package and the .cu sources.

Builds both with ``python -m build --no-isolation`` (a few seconds; needs the
``build`` and ``wheel`` packages of the ``test`` extra), installs the wheel
with ``pip install --no-deps --target`` and imports it from outside the
source tree.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("build") is None or importlib.util.find_spec("wheel") is None
    or not (ROOT / "setup.cfg").is_file(),
    reason="needs a source tree and the build and wheel packages (the test extra)")


#: Left out of the copy that is built (a developer's tree may hold them).
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                              "_build", "generated", ".pytest_cache", "*.nbi", "*.nbc")


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    # Build from a copy, so that no build/ or egg-info is left in the source tree.
    src = tmp_path_factory.mktemp("src") / "tensorpar"
    shutil.copytree(ROOT, src, symlinks=True, ignore=SKIP)
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                          str(src)], capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def _tracked(folder: str, suffixes: tuple[str, ...]) -> set[str]:
    base = ROOT / folder
    return {str(p.relative_to(ROOT)) for p in base.rglob("*")
            if p.is_file() and p.suffix in suffixes and "__pycache__" not in p.parts}


def test_sdist_has_the_test_suite_docs_and_sources(dists):
    sdist, _ = dists
    with tarfile.open(sdist) as tar:
        prefix = tar.getnames()[0].split("/")[0] + "/"
        names = {n[len(prefix):] for n in tar.getnames() if n.startswith(prefix)}
    for want in ("LICENSE", "CHANGELOG.md", "README.md", "setup.cfg", "pyproject.toml",
                 "tests/conftest.py", "docs/conf.py", "scripts/test.sh"):
        assert want in names, want
    missing = (_tracked("tests", (".py",)) | _tracked("kernels", (".py", ".cu"))
               | _tracked("examples", (".py",))) - names
    assert not missing, sorted(missing)
    assert any(n.startswith("tests/distributed/") for n in names)


def _packages_on_disk() -> set[str]:
    pkgs = {"tensorpar.kernels"}
    for init in (ROOT / "tensorpar").rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if "kernels" not in rel.parts:
            pkgs.add(".".join(rel.parts))
    return pkgs


def test_setup_cfg_lists_every_package():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    assert _packages_on_disk() <= listed, sorted(_packages_on_disk() - listed)


def test_wheel_has_every_package_the_kernels_and_the_entry_point(dists):
    _, wheel = dists
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = z.read(entry).decode()
    for pkg in _packages_on_disk():
        assert pkg.replace(".", "/") + "/__init__.py" in names, pkg
    for cu in (ROOT / "kernels").glob("*.cu"):
        assert f"tensorpar/kernels/{cu.name}" in names
    assert "tensorpar/py.typed" in names
    assert any(n.endswith(".dist-info/LICENSE") or "/licenses/LICENSE" in n for n in names)
    assert "tensorpar = tensorpar.cli:main" in entry_points
    assert not any(n.startswith(("tests/", "kernels/")) for n in names)


def test_installed_wheel_works_outside_the_tree(dists, tmp_path):
    _, wheel = dists
    target = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "--disable-pip-version-check", "--target", str(target), str(wheel)],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    code = ("import importlib.resources as r, tensorpar, tensorpar.kernels, tensorpar.cli;"
            "print(tensorpar.__file__);"
            "print(sorted(p.name for p in r.files('tensorpar.kernels').iterdir()"
            " if p.name.endswith('.cu')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    where, cus = res.stdout.splitlines()
    assert where.startswith(str(target))
    assert cus == str(sorted(p.name for p in (ROOT / "kernels").glob("*.cu")))
    script = target / "bin" / "tensorpar"
    res = subprocess.run([sys.executable, str(script), "--version"], capture_output=True,
                         text=True, cwd=tmp_path, env=env, timeout=TIMEOUT)
    assert res.returncode == 0 and res.stdout.startswith("tensorpar "), res.stderr
