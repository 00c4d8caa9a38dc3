"""Which of the Python requirements the blocks need are missing for this interpreter: the core
package's dependencies (read from its pyproject.toml, where they are declared once) and the
blocks' own. Prints the unmet requirements, one a line; exits 0 either way. Run by CMake at
configure time: `python check_python_requirements.py CORE_PYPROJECT [REQUIREMENT ...]`."""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import io
import re
import sys

import tomllib

IMPORT_NAMES = {"pyzmq": "zmq"}
"""Distributions whose import name differs from their own."""


def unmet(requirement: str) -> bool:
    name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            importlib.import_module(IMPORT_NAMES.get(name, name.replace("-", "_")))
    except Exception:
        return True
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return False
    specifier = Requirement(requirement).specifier
    try:
        return bool(specifier) and not specifier.contains(importlib.metadata.version(name), prereleases=True)
    except importlib.metadata.PackageNotFoundError:
        return False


def main(pyproject: str, *extra: str) -> None:
    with open(pyproject, "rb") as f:
        requirements = [*tomllib.load(f)["project"]["dependencies"], *extra]
    for requirement in requirements:
        if unmet(requirement):
            print(requirement)


if __name__ == "__main__":
    main(*sys.argv[1:])
