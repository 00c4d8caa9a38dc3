"""Site-specific multipath from DeepMIMO v4 scenarios, read through the `deepmimo` package.

A scenario is a folder of DeepMIMO files under a scenarios folder (by default the ray-traced
scenes committed in `data/`; any folder of downloaded DeepMIMO v4 scenarios works as-is).
Each is read once per process and kept as plain arrays, so drawing thousands of users costs
array slicing only. DeepMIMO asks on stdin whether to download a scenario it cannot find;
that question never reaches the user: a missing scenario is a FileNotFoundError that names
the folder, what is there, and how to build the bundled ones.

deepmimo opens `.npz` files with pickle enabled, so a crafted scenario folder could run code.
Every array file of a scenario is therefore opened first with pickle disabled, and a folder
holding anything but plain arrays is refused before deepmimo sees it.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_FOLDER = Path(__file__).resolve().parent / "data"
"""The ray-traced scenarios that ship with the package (see docs/scenarios.md)."""

HELDOUT_SCENARIO = "san_francisco"
"""The test site: a different city (hilly terrain, taller buildings) that no training set draws from."""

TRAIN_SCENARIOS = ("etoile", "florence", "munich", "street_canyon", "street_canyon_cars")
"""Sites the training data draws users from."""

PARAMS_FILE = "params.json"
MATRICES = ["delay", "power", "inter", "aoa_az", "rx_pos", "tx_pos"]
"""What the loader reads: delays, powers, interaction codes (LoS) and azimuths (DeepMIMO counts
a user's paths from them), and the positions; angles and phases are not needed for a TDL."""

BUILD_HINT = "build the bundled ones with `lwmspectro scenarios build`, or name a folder of DeepMIMO v4 scenarios"


@dataclass(frozen=True)
class Paths:
    """One user's multipath: delays ascending, so that with `los` the first path is the direct one.

    Powers are linear received-power gains as the ray tracer gives them (DeepMIMO stores dBW
    for a 0 dBW transmitter); a channel model normalises them.
    """

    delays_s: np.ndarray
    powers_lin: np.ndarray
    los: bool


@dataclass(frozen=True, eq=False)
class Scenario:
    """A scenario's per-user path tables (users x paths, NaN where a user has fewer paths)."""

    name: str
    folder: Path
    carrier_hz: float
    delays_s: np.ndarray
    powers_db: np.ndarray
    num_paths: np.ndarray
    los: np.ndarray
    rx_positions_m: np.ndarray
    tx_position_m: np.ndarray

    @property
    def n_users(self) -> int:
        return int(self.delays_s.shape[0])


def resolve_folder(folder=None) -> Path:
    return DATA_FOLDER if folder is None else Path(folder).expanduser().resolve()


def list_scenarios(folder=None) -> list[str]:
    """Names of the DeepMIMO scenarios (sub-folders with a params.json) in `folder`."""
    root = resolve_folder(folder)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / PARAMS_FILE).is_file())


def load_scenario(name: str, folder=None) -> Scenario:
    """The scenario `name` from `folder` (default: the bundled ones), read once per process."""
    return _load_cached(str(name), str(resolve_folder(folder)))


def active_users(scenario: Scenario) -> np.ndarray:
    """Indices of the users that receive at least one path."""
    return np.flatnonzero(scenario.num_paths > 0)


def user_paths(scenario: Scenario, user: int) -> Paths:
    """The paths of one user, sorted by delay."""
    if not 0 <= int(user) < scenario.n_users:
        raise ValueError(
            f"user {user} out of range for scenario {scenario.name!r}: valid users are 0..{scenario.n_users - 1}"
        )
    user = int(user)
    count = int(scenario.num_paths[user])
    if count == 0:
        raise ValueError(
            f"user {user} of scenario {scenario.name!r} receives no path; draw users from active_users(scenario)"
        )
    delays = scenario.delays_s[user, :count].astype(np.float64)
    powers = 10.0 ** (scenario.powers_db[user, :count].astype(np.float64) / 10.0)
    order = np.argsort(delays, kind="stable")
    return Paths(delays_s=delays[order], powers_lin=powers[order], los=bool(scenario.los[user]))


def missing_scenario_error(name: str, root: Path) -> FileNotFoundError:
    present = list_scenarios(root)
    there = ", ".join(present) if present else "none"
    return FileNotFoundError(f"scenario {name!r} not found in {root} (scenarios there: {there}); {BUILD_HINT}")


def _refuse_stdin(prompt=""):
    raise FileNotFoundError(f"deepmimo asked on stdin ({str(prompt).strip()!r}); the scenario files are incomplete")


@contextlib.contextmanager
def _quiet_deepmimo(root: Path):
    """Point deepmimo at `root`, swallow its prints (import notices, progress) and make any
    stdin question an error."""
    with contextlib.redirect_stdout(io.StringIO()):
        import deepmimo as dm

        previous_folder = dm.config.get("scenarios_folder")
        previous_input = builtins.input
        dm.config.set("scenarios_folder", str(root))
        builtins.input = _refuse_stdin
        try:
            yield dm
        finally:
            builtins.input = previous_input
            dm.config.set("scenarios_folder", previous_folder)


ARRAY_SUFFIXES = (".npz", ".npy")


def check_plain_arrays(folder: Path) -> None:
    """Raise ValueError if any array file under `folder` needs pickle to load (an object array,
    or a pickle dressed as an array file): unpickling it could run code."""
    for path in sorted(p for p in folder.rglob("*") if p.suffix in ARRAY_SUFFIXES and p.is_file()):
        try:
            loaded = np.load(path, allow_pickle=False)
            if isinstance(loaded, np.lib.npyio.NpzFile):
                with loaded:
                    for name in loaded.files:
                        loaded[name]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(
                f"{path}: not a plain numeric array file ({err}); scenario arrays are loaded without "
                "pickle, so object arrays are refused"
            ) from err


@functools.cache
def _load_cached(name: str, root_text: str) -> Scenario:
    root = Path(root_text)
    if name not in list_scenarios(root):
        raise missing_scenario_error(name, root)
    if name != name.lower():
        raise ValueError(f"scenario {name!r} in {root}: DeepMIMO scenario names are lower case; rename the folder")
    check_plain_arrays(root / name)
    # deepmimo trusts its files: a folder cut short or edited by hand fails inside it in any way
    # (KeyError, IndexError, TypeError, JSON errors), which is said here with the folder.
    with _quiet_deepmimo(root) as dm:
        try:
            dataset = dm.load(name, matrices=MATRICES)
        except Exception as err:
            raise _unreadable(name, root, err) from err
        if isinstance(dataset, dm.DynamicDataset):
            raise ValueError(f"scenario {name!r} is dynamic (several snapshots); only static scenarios are supported")
        if isinstance(dataset, dm.MacroDataset):
            dataset = dataset.datasets[0]
    try:
        scenario = Scenario(
            name=name,
            folder=root / name,
            carrier_hz=float(dataset.rt_params["frequency"]),
            delays_s=np.asarray(dataset.delay, dtype=np.float64),
            powers_db=np.asarray(dataset.power, dtype=np.float32),
            num_paths=np.asarray(dataset.num_paths, dtype=np.int64),
            los=np.asarray(dataset.los) == 1,
            rx_positions_m=np.asarray(dataset.rx_pos, dtype=np.float64),
            tx_position_m=np.asarray(dataset.tx_pos, dtype=np.float64).reshape(-1, 3)[0],
        )
    except Exception as err:
        raise _unreadable(name, root, err) from err
    _check_consistent(scenario)
    return scenario


def _unreadable(name: str, root: Path, err: Exception) -> ValueError:
    return ValueError(
        f"scenario {name!r} in {root}: its files cannot be read ({type(err).__name__}: {err}); "
        f"restore them or trace the site again ({BUILD_HINT})"
    )


def _check_consistent(scenario: Scenario) -> None:
    """ValueError unless the arrays agree on the users and the paths they hold are numbers."""
    where = f"scenario {scenario.name!r} in {scenario.folder.parent}"
    if not 0 < scenario.carrier_hz < np.inf:
        raise ValueError(f"{where}: carrier frequency {scenario.carrier_hz:g} Hz is not a positive frequency")
    users = len(scenario.num_paths)
    arrays = {
        "delay": scenario.delays_s,
        "power": scenario.powers_db,
        "los": scenario.los,
        "rx_pos": scenario.rx_positions_m,
    }
    for field, array in arrays.items():
        if array.ndim == 0 or len(array) != users:
            raise ValueError(f"{where}: {field} has {array.shape[:1] or 'no'} rows, not one per user ({users})")
    widest = int(scenario.num_paths.max(initial=0))
    if scenario.num_paths.min(initial=0) < 0 or widest > min(scenario.delays_s.shape[-1], scenario.powers_db.shape[-1]):
        raise ValueError(
            f"{where}: num_paths does not fit the delay and power arrays' {scenario.delays_s.shape[-1]} paths"
        )
    held = np.arange(widest)[None, :] < scenario.num_paths[:, None]
    for field, array in (("delay", scenario.delays_s), ("power", scenario.powers_db)):
        if not np.isfinite(array[:, :widest][held]).all():
            raise ValueError(f"{where}: {field} holds NaN or infinite values on paths the users receive")
