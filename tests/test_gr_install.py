"""The GNU Radio way of installing: CMake alone (no Makefile, no pip) puts the blocks, the GRC files,
the core package and the shipped model bundle under a prefix, and a fresh interpreter with that
prefix on its path finds all of them; configure names the missing Python requirements and the pip
command that installs them."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def cmake(*args, cwd=REPO):
    return subprocess.run(["cmake", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    root = tmp_path_factory.mktemp("install")
    build, prefix = root / "build", root / "prefix"
    configure = cmake(
        "-S", ".", "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={prefix}", f"-DPYTHON_EXECUTABLE={sys.executable}",
        "-DLWM_INSTALL_CORE=ON",
    )  # fmt: skip
    assert configure.returncode == 0, configure.stdout + configure.stderr
    for step in (("--build", str(build)), ("--install", str(build))):
        result = cmake(*step)
        assert result.returncode == 0, result.stdout + result.stderr
    return prefix


def test_a_fresh_interpreter_finds_the_blocks_the_core_and_the_bundle_under_the_prefix(prefix, tmp_path):
    (site,) = prefix.glob("lib/python3*/site-packages")
    probe = (
        "import gnuradio.lwmspectro as blocks, lwmspectro; from lwmspectro.bundle import default_bundle_dir; "
        "print(blocks.__file__); print(lwmspectro.__file__); print(default_bundle_dir())"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("LWMSPECTRO_BUNDLE", None)
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    blocks_init, core_init, bundle = map(Path, result.stdout.split())
    assert blocks_init == site / "gnuradio" / "lwmspectro" / "__init__.py"
    assert core_init == site / "lwmspectro" / "__init__.py"
    assert bundle == prefix / "share" / "lwmspectro" / "models" / "small"
    assert (site / "lwmspectro" / "configs").is_dir(), "the core's data files come along"
    version = subprocess.run(
        [str(prefix / "bin" / "lwmspectro"), "--version"], env=env, capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0 and "gr-lwmspectro 0.1.0" in version.stdout, version.stderr


def test_every_block_definition_and_example_is_installed(prefix):
    installed = {p.name for p in (prefix / "share" / "gnuradio" / "grc" / "blocks").iterdir()}
    assert {p.name for p in (REPO / "grc").glob("*.block.yml")} <= installed
    examples = {p.name for p in (prefix / "share" / "gr-lwmspectro" / "examples").iterdir()}
    assert {p.name for p in (REPO / "grc" / "examples").glob("*.grc")} == examples


def test_configure_names_the_missing_python_requirements_and_the_pip_command(tmp_path):
    """The system interpreter has GNU Radio but not the core's dependencies (they live in the venv)."""
    system_python = shutil.which("python3", path="/usr/bin")
    probe = subprocess.run([system_python, "-c", "import onnxruntime"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("the system Python has the requirements")
    result = cmake("-S", ".", "-B", str(tmp_path / "build"), f"-DPYTHON_EXECUTABLE={system_python}")
    assert result.returncode != 0
    assert "lacks" in result.stderr and "onnxruntime" in result.stderr
    assert f"{system_python} -m pip install" in result.stderr
