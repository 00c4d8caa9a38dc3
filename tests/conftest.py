"""What the whole suite shares: markers derived from what a test module needs, and one torch thread per test.

A module that imports torch or the training package carries the `torch` marker; one that imports GNU
Radio, or drives the installed blocks through a subprocess (tests/test_gr_*), carries `gnuradio`. So
`pytest -m "not gnuradio"` runs on a machine without GNU Radio, and `-m "not torch"` without PyTorch.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

# bundle_factory exports its tiny test bundles with torch.
TORCH_ROOTS = {"torch", "lwmspectro_train", "train_fixtures", "bundle_factory"}
GNURADIO_ROOTS = {"gnuradio", "pmt"}


def _imported_roots(module: types.ModuleType) -> set[str]:
    """Top-level package names of the modules, classes and functions a test module holds."""
    roots = set()
    for value in vars(module).values():
        name = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        if isinstance(name, str):
            roots.add(name.split(".")[0])
    return roots


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marks: dict[str, tuple[bool, bool]] = {}
    for item in items:
        module = item.module if isinstance(item, pytest.Function) else None
        if module is None:
            continue
        if module.__name__ not in marks:
            roots = _imported_roots(module)
            marks[module.__name__] = (
                bool(roots & TORCH_ROOTS),
                bool(roots & GNURADIO_ROOTS) or module.__name__.startswith("test_gr_"),
            )
        uses_torch, uses_gnuradio = marks[module.__name__]
        if uses_torch:
            item.add_marker(pytest.mark.torch)
        if uses_gnuradio:
            item.add_marker(pytest.mark.gnuradio)


@pytest.fixture(autouse=True)
def one_torch_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """One intra-op thread in torch tests: on a shared two-core machine a second spinning thread only
    slows these tiny models."""
    if request.node.get_closest_marker("torch") is None or "torch" not in sys.modules:
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
