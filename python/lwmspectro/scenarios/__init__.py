"""Site-specific scenarios: ray-traced multipath per user, in DeepMIMO v4 format.

`load_scenario` reads one (cached per process), `user_paths` gives one user's delays, powers and
line-of-sight flag for the site-specific TDL channel. The bundled scenarios were ray-traced with
Sionna RT (tools/rt/build_scenarios.py, `lwmspectro scenarios build`); docs/scenarios.md says how.
"""

from .loader import (
    DATA_FOLDER,
    HELDOUT_SCENARIO,
    TRAIN_SCENARIOS,
    Paths,
    Scenario,
    active_users,
    list_scenarios,
    load_scenario,
    user_paths,
)

__all__ = [
    "DATA_FOLDER",
    "HELDOUT_SCENARIO",
    "TRAIN_SCENARIOS",
    "Paths",
    "Scenario",
    "active_users",
    "list_scenarios",
    "load_scenario",
    "user_paths",
]
