"""`lwmspectro scenarios list|show|build`: the site-specific scenarios behind the TDL channel."""

import logging
import os
from pathlib import Path

from ..cli import UsageError, positive_int

HELP = "site-specific scenarios: list them, show one, or ray-trace the bundled ones (build)"

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILDER = REPO_ROOT / "tools" / "rt" / "build_scenarios.py"
RT_REQUIREMENTS = REPO_ROOT / "tools" / "rt" / "requirements.txt"
RT_PYTHON_DEFAULT = REPO_ROOT / ".venv-rt" / "bin" / "python"
LWM_SITES_DEFAULT = REPO_ROOT / "data" / "lwm-sites"
"""Where sites traced for the LWM channel model go unless --out says otherwise: they are larger
than the committed spectrogram sites and are not committed."""

logger = logging.getLogger(__name__)


def carrier_ghz(text: str) -> float:
    """argparse type: a carrier frequency in GHz, a positive number."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of GHz") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} GHz is not a positive carrier frequency")
    return value


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="the scenarios in a folder and their role (train / held-out)")
    listing.add_argument("--folder", help="scenarios folder (default: the bundled scenarios)")
    show = sub.add_parser("show", help="one scenario's site, users and multipath statistics")
    show.add_argument("name")
    show.add_argument("--folder", help="scenarios folder (default: the bundled scenarios)")
    build = sub.add_parser(
        "build",
        help="ray-trace Sionna RT's built-in scenes into DeepMIMO scenarios "
        "(runs in the separate .venv-rt; see docs/scenarios.md)",
    )
    build.add_argument("--scene", nargs="+", metavar="NAME", help="scenarios to build (default: all)")
    build.add_argument(
        "--out",
        help="folder that receives the scenarios (default: the bundled scenarios folder; "
        "data/lwm-sites with --channel-paths or --carrier-ghz)",
    )
    build.add_argument(
        "--channel-paths",
        action="store_true",
        help="also keep each path's phase and departure angles, which the LWM channel matrices need",
    )
    build.add_argument(
        "--carrier-ghz",
        nargs="+",
        type=carrier_ghz,
        metavar="GHZ",
        help="trace each site at these carriers over the same users, one scenario each named "
        "<site>_<carrier> (e.g. --carrier-ghz 3.5 28: munich_3p5ghz, munich_28ghz)",
    )
    build.add_argument(
        "--grid-density", type=positive_int, metavar="K", help="K times as many users per side over the same area"
    )
    build.add_argument("--max-users", type=positive_int, metavar="N", help="trace only N users spread over the grid")
    build.add_argument(
        "--users-per-trace", type=positive_int, metavar="N", help="receivers per ray-tracing call (default 1000)"
    )
    build.add_argument(
        "--rt-python", help="python of the ray-tracing venv (default: $LWMSPECTRO_RT_PYTHON, else .venv-rt/bin/python)"
    )


def run(args) -> int:
    return {"list": list_command, "show": show_command, "build": build_command}[args.action](args)


def list_command(args) -> int:
    from .. import scenarios

    root = scenarios.loader.resolve_folder(args.folder)
    names = scenarios.list_scenarios(root)
    if not names:
        raise FileNotFoundError(f"no DeepMIMO scenarios in {root}; {scenarios.loader.BUILD_HINT}")
    print(f"scenarios in {root}:")
    for name in names:
        role = (
            "held-out" if name == scenarios.HELDOUT_SCENARIO else "train" if name in scenarios.TRAIN_SCENARIOS else "-"
        )
        print(f"  {name:<24} {role}")
    return 0


def show_command(args) -> int:
    import json

    import numpy as np

    from .. import scenarios

    sc = scenarios.load_scenario(args.name, args.folder)
    users = scenarios.active_users(sc)
    spreads = np.array([rms_delay_spread(scenarios.user_paths(sc, u)) for u in users])
    print(f"scenario      {sc.name}  ({sc.folder})")
    print(f"carrier       {sc.carrier_hz / 1e9:.3f} GHz")
    print(f"base station  {np.round(sc.tx_position_m, 1).tolist()} m")
    print(f"users         {sc.n_users} ({len(users)} with paths, {int(sc.los[users].sum())} line-of-sight)")
    if len(users):
        print(f"paths/user    median {np.median(sc.num_paths[users]):.0f}, max {sc.num_paths.max()}")
        print(
            f"delay spread  median {np.median(spreads) * 1e9:.0f} ns, "
            f"90th percentile {np.percentile(spreads, 90) * 1e9:.0f} ns"
        )
    provenance = sc.folder / "provenance.json"
    if provenance.is_file():
        made = json.loads(provenance.read_text())
        print(
            f"made with     {made.get('command', '?')} from Sionna scene {made['recipe']['sionna_scene']!r}, "
            + ", ".join(f"{k} {v}" for k, v in made.get("versions", {}).items())
        )
    return 0


def rms_delay_spread(paths) -> float:
    """RMS delay spread: the square root of the power-delay profile's second central moment."""
    import numpy as np

    weights = paths.powers_lin / paths.powers_lin.sum()
    mean = float(np.sum(weights * paths.delays_s))
    return float(np.sqrt(np.sum(weights * (paths.delays_s - mean) ** 2)))


def load_builder():
    """The builder script as a module (stdlib-only at import): its recipes and pure functions."""
    import importlib.util
    import sys

    if not BUILDER.is_file():
        raise FileNotFoundError(
            f"the scenario builder {BUILDER} is missing: `scenarios build` needs a source checkout "
            "of gr-lwmspectro (it ships in tools/rt/, not in the installed package)"
        )
    spec = importlib.util.spec_from_file_location("lwmspectro_rt_builder", BUILDER)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"the scenario builder {BUILDER} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def builder_scene_names() -> list[str]:
    """The scene recipes the builder knows."""
    return sorted(load_builder().RECIPES)


def build_command(args) -> int:
    import subprocess

    from .. import scenarios

    known = builder_scene_names()
    unknown = [name for name in args.scene or [] if name not in known]
    if unknown:
        raise UsageError(f"unknown scene {', '.join(unknown)}; valid choices: {', '.join(known)}")
    rt_python = Path(args.rt_python or os.environ.get("LWMSPECTRO_RT_PYTHON") or RT_PYTHON_DEFAULT)
    if not rt_python.is_file():
        raise FileNotFoundError(
            f"no ray-tracing python at {rt_python}. Sionna RT needs numpy 2 and GNU Radio needs numpy 1, so the "
            f"build runs in a venv of its own; create it with\n"
            f"    /usr/bin/python3 -m venv {REPO_ROOT / '.venv-rt'}\n"
            f"    {REPO_ROOT / '.venv-rt' / 'bin' / 'pip'} install -r {RT_REQUIREMENTS}\n"
            f"(Debian: apt-get install libllvm19 for Dr.Jit's CPU backend), then run this again."
        )
    for_channels = args.channel_paths or args.carrier_ghz
    out = scenarios.loader.resolve_folder(args.out or (LWM_SITES_DEFAULT if for_channels else None))
    command = [str(rt_python), str(BUILDER), "--out", str(out)]
    if args.scene:
        command += ["--scene", *args.scene]
    if args.channel_paths:
        command.append("--channel-paths")
    if args.carrier_ghz:
        command += ["--carrier-ghz", *map(str, args.carrier_ghz)]
    for option in ("grid_density", "max_users", "users_per_trace"):
        if getattr(args, option) is not None:
            command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    logger.info("running: %s", " ".join(command))
    return subprocess.run(command, stdin=subprocess.DEVNULL, check=False).returncode
