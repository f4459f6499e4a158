"""The installable package: the wheel carries the whole package, its samples and the `cnnkit`
command, and nothing of the app or the tests; its requirements are requirements.txt's."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation: the installed setuptools builds it, so this needs no network.
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                             "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300,
                            cwd=out)
    assert result.returncode == 0, result.stderr
    (path,) = out.glob("cnnkit-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_holds_every_module_and_the_samples_and_nothing_else(wheel):
    names = set(wheel.namelist())
    package = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cnnkit").rglob("*.py")}
    assert package <= names
    assert {"cnnkit/data/samples/mnist_sample.npz", "cnnkit/data/samples/fashion_mnist_sample.npz"} <= names
    top = {name.split("/")[0] for name in names}
    assert top == {"cnnkit", next(t for t in top if t.endswith(".dist-info"))}  # no app_pages, tests, tools


def test_the_wheel_declares_the_cnnkit_command_and_the_apps_requirements(wheel):
    info = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    assert "cnnkit = cnnkit.cli:main" in wheel.read(info).decode()
    metadata = wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    requires = {str(Requirement(line.split(":", 1)[1])) for line in metadata.splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line}
    pinned = {str(Requirement(line.split("#")[0])) for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.split("#")[0].strip()}
    assert requires == pinned and len(pinned) >= 8
    assert "Provides-Extra: ray" in metadata and "Provides-Extra: dev" in metadata
