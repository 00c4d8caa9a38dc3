"""Ray-trace the city scenes that ship inside the sionna-rt wheel and convert them to DeepMIMO v4.

Runs in the ray-tracing venv (.venv-rt: sionna-rt 2.1, numpy 2), not in the GNU Radio venv;
`lwmspectro scenarios build` starts it as a subprocess. Each scene gets one base station a few
metres above the roof or ground under it and a grid of users 1.5 m above open ground; paths
come from Sionna RT's PathSolver on the CPU, are exported with DeepMIMO's own Sionna exporter
and converted with dm.convert, then pruned to the matrices a channel model reads: those of the
site-specific TDL channel by default, also each path's phase and departure angles with
--channel-paths (the LWM channel matrices need them).

With --carrier-ghz each site is traced once per carrier over the same base station and users
(one scenario per carrier, named <site>_<carrier>, e.g. munich_3p5ghz and munich_28ghz), as
sub-6 GHz to mmWave beam prediction pairs them; --grid-density K lays K times as many users
per side over the same area.

Usage: python tools/rt/build_scenarios.py [--scene NAME ...] --out DIR [--channel-paths]
           [--carrier-ghz GHZ ...] [--grid-density K] [--max-users N] [--users-per-trace N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from importlib.metadata import version
from pathlib import Path

LLVM_LIBRARY = "/usr/lib/x86_64-linux-gnu/libLLVM.so.19.1"
UE_HEIGHT_M = 1.5
GROUND_TOLERANCE_M = 0.5
TDL_MATRICES = ("delay", "power", "inter", "aoa_az", "rx_pos", "tx_pos")
"""The DeepMIMO matrices the site-specific TDL channel reads: delays, powers, interaction codes
(LoS), azimuths (DeepMIMO counts paths from them) and positions. Everything else the converter
writes (building geometry, interaction positions, other angles) is dropped to keep the committed
scenarios small."""
CHANNEL_MATRICES = (*TDL_MATRICES, "phase", "aod_az", "aod_el")
"""What lwmspectro.lwm_channels builds channel matrices from: also each path's phase and
departure angles."""
USERS_PER_TRACE = 1000
"""Receivers handed to one PathSolver call: a dense grid is traced in batches of this many, so
that memory stays bounded; the batches are converted together into one scenario."""


@dataclass(frozen=True)
class SceneRecipe:
    """How one DeepMIMO scenario is made from one built-in Sionna scene."""

    sionna_scene: str
    carrier_hz: float
    bs_xy: tuple[float, float]
    bs_mast_m: float
    grid_spacing_m: float
    grid_points_per_side: int
    max_depth: int = 4
    samples_per_src: int = 1_000_000


def densify(recipe: SceneRecipe, density: int) -> SceneRecipe:
    """`recipe` with `density` times as many users per side over the same square of ground."""
    if density < 1:
        raise ValueError(f"grid density must be a whole number of at least 1, got {density}")
    return replace(
        recipe,
        grid_spacing_m=recipe.grid_spacing_m / density,
        grid_points_per_side=(recipe.grid_points_per_side - 1) * density + 1,
    )


def carrier_tag(carrier_hz: float) -> str:
    """The carrier as a scenario-name suffix: 3.5e9 -> '3p5ghz', 28e9 -> '28ghz' (DeepMIMO names
    are lower case and the loader takes a dot for a file suffix)."""
    return f"{carrier_hz / 1e9:g}".replace(".", "p") + "ghz"


def site_name(scene: str, carrier_hz: float | None) -> str:
    """The scenario a scene traced at `carrier_hz` is written as; None: the recipe's carrier, the bare name."""
    return scene if carrier_hz is None else f"{scene}_{carrier_tag(carrier_hz)}"


def kept_file(file_name: str, matrices: tuple[str, ...]) -> bool:
    """Whether a file dm.convert wrote belongs to a scenario keeping `matrices` (and its params.json)."""
    pattern = r"(" + "|".join(map(re.escape, matrices)) + r")_t\d+_tx\d+_r\d+\.npz"
    return file_name == "params.json" or re.fullmatch(pattern, file_name) is not None


def baseband_phase_deg(phase_deg, delay_s, carrier_hz: float):
    """Path phases of the baseband coefficients a e^{-j 2 pi f_c tau}, degrees in [-180, 180).

    Sionna's path coefficient a is the passband one (its LoS path has phase 0 at any carrier;
    Paths.cir applies the delay's carrier phase) and dm.convert stores angle(a). DeepMIMO's
    channel formula, like the Wireless InSite scenarios it was written for, reads the phase of
    the baseband coefficient: without the carrier term, paths would add as if in phase at
    every distance. NaN (no path) stays NaN.
    """
    import numpy as np

    turns = np.asarray(delay_s, dtype=np.float64) * carrier_hz
    shifted = np.asarray(phase_deg, dtype=np.float64) - 360.0 * (turns - np.floor(turns))
    return ((shifted + 180.0) % 360.0 - 180.0).astype(np.float32)


def store_baseband_phases(folder: Path, carrier_hz: float) -> None:
    """Rewrite each phase_*.npz in `folder` with baseband_phase_deg of it and its delay_*.npz."""
    import numpy as np

    for phase_file in sorted(folder.glob("phase_*.npz")):
        delay_file = folder / phase_file.name.replace("phase_", "delay_", 1)
        with np.load(phase_file, allow_pickle=False) as phases, np.load(delay_file, allow_pickle=False) as delays:
            baseband = baseband_phase_deg(phases["phase"], delays["delay"], carrier_hz)
        np.savez_compressed(phase_file, phase=baseband)


def spread_users(count: int, keep: int | None):
    """Indices of `keep` of `count` users spread evenly over the grid's order (all when None)."""
    import numpy as np

    if keep is None or keep >= count:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, keep).round().astype(int))


RECIPES = {
    "munich": SceneRecipe("munich", 3.5e9, (0.0, 0.0), 10.0, 9.0, 28),
    "etoile": SceneRecipe("etoile", 2.4e9, (0.0, 0.0), 10.0, 11.0, 28),
    "florence": SceneRecipe("florence", 1.8e9, (0.0, 0.0), 10.0, 9.0, 28),
    "san_francisco": SceneRecipe("san_francisco", 2.6e9, (0.0, 0.0), 6.0, 10.0, 28),
    "street_canyon": SceneRecipe("simple_street_canyon", 5.2e9, (-40.0, 0.0), 8.0, 5.0, 32),
    "street_canyon_cars": SceneRecipe("simple_street_canyon_with_cars", 2.65e9, (40.0, 0.0), 8.0, 5.0, 32),
}


def surface_heights(mi_scene, xs, ys):
    """Height of the first surface seen from above and from below at each (x, y) (NaN: nothing there).

    An outdoor point is one where both agree: the ray from the sky and the ray from under the
    ground meet the same terrain, with no roof, car or canopy in between.
    """
    import mitsuba as mi
    import numpy as np

    bbox = mi_scene.bbox()
    n = len(xs)
    heights = []
    for z0, dz in ((float(bbox.max.z) + 10.0, -1.0), (float(bbox.min.z) - 10.0, 1.0)):
        origin = mi.Point3f(mi.Float(xs), mi.Float(ys), mi.Float(np.full(n, z0)))
        hit = mi_scene.ray_intersect(mi.Ray3f(o=origin, d=mi.Vector3f(0.0, 0.0, dz)))
        heights.append(np.where(np.array(hit.is_valid()), np.array(hit.p.z), np.nan))
    return heights[0], heights[1]


def place_transceivers(scene, recipe: SceneRecipe):
    """The base-station position and the outdoor user-grid positions for one scene."""
    import numpy as np

    bx, by = recipe.bs_xy
    top, _ = surface_heights(scene.mi_scene, np.array([bx]), np.array([by]))
    if np.isnan(top[0]):
        raise ValueError(f"no surface under the base station at {recipe.bs_xy} in {recipe.sionna_scene}")
    bs = np.array([bx, by, top[0] + recipe.bs_mast_m])
    offsets = (np.arange(recipe.grid_points_per_side) - (recipe.grid_points_per_side - 1) / 2) * recipe.grid_spacing_m
    gx, gy = np.meshgrid(bx + offsets, by + offsets)
    gx, gy = gx.ravel(), gy.ravel()
    from_sky, from_below = surface_heights(scene.mi_scene, gx, gy)
    outdoor = np.abs(from_sky - from_below) < GROUND_TOLERANCE_M
    users = np.stack([gx[outdoor], gy[outdoor], from_sky[outdoor] + UE_HEIGHT_M], axis=1)
    return bs, users


def load_scene(recipe: SceneRecipe):
    """The recipe's built-in Sionna scene at its carrier (DeepMIMO's base scene: separate
    objects, one isotropic vertically polarised antenna at each end)."""
    import sionna.rt as rt
    from deepmimo.pipelines.sionna_rt.sionna_utils import create_base_scene

    return create_base_scene(getattr(rt.scene, recipe.sionna_scene), recipe.carrier_hz)


def solver_parameters(recipe: SceneRecipe) -> dict:
    return {
        "max_depth": recipe.max_depth,
        "los": True,
        "specular_reflection": True,
        "diffuse_reflection": False,
        "refraction": True,
        "synthetic_array": True,
        "samples_per_src": recipe.samples_per_src,
        "max_num_paths_per_src": 1_000_000,
        "seed": 42,
    }


def trace(scene, recipe: SceneRecipe, bs, users, users_per_trace: int, export_folder: Path) -> float:
    """Ray-trace the base station to `users` in batches of `users_per_trace` receivers and write
    the Sionna export folder; returns the seconds the solver took."""
    import sionna.rt as rt
    from deepmimo.exporters.sionna_exporter import export_paths, sionna_exporter

    solver_params = solver_parameters(recipe)
    scene.add(rt.Transmitter(name="bs", position=bs.tolist(), power_dbm=0.0))
    solver = rt.PathSolver()
    batches = []
    trace_s = 0.0
    for start in range(0, len(users), users_per_trace):
        names = [f"ue_{i}" for i in range(start, min(start + users_per_trace, len(users)))]
        for name, position in zip(names, users[start : start + len(names)]):
            scene.add(rt.Receiver(name=name, position=position.tolist()))
        started = time.perf_counter()
        paths = solver(scene=scene, **solver_params)
        trace_s += time.perf_counter() - started
        # Plain arrays now, so that the solver's buffers go before the next batch.
        batches.append(export_paths(paths)[0])
        for name in names:
            scene.remove(name)
    sionna_exporter(scene, batches, solver_params, str(export_folder))
    return trace_s


def convert(
    name: str, export_folder: Path, work: Path, out: Path, matrices: tuple[str, ...], carrier_hz: float
) -> Path:
    """dm.convert the Sionna export, keep params.json and the files of `matrices` (phases made
    baseband ones) and move the scenario under `out`."""
    import deepmimo as dm

    # The converter writes into ./deepmimo_scenarios relative to the working directory.
    cwd = Path.cwd()
    os.chdir(work)
    try:
        dm.convert(str(export_folder), scenario_name=name, overwrite=True, vis_scene=False)
    finally:
        os.chdir(cwd)
    converted = work / "deepmimo_scenarios" / name
    target = out / name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for file in converted.iterdir():
        if kept_file(file.name, matrices):
            shutil.copy2(file, target / file.name)
    store_baseband_phases(target, carrier_hz)
    return target


def build_site(name: str, args: argparse.Namespace) -> None:
    """Trace one recipe at each requested carrier over one placement and write each scenario."""
    recipe = densify(RECIPES[name], args.grid_density)
    matrices = CHANNEL_MATRICES if args.channel_paths else TDL_MATRICES
    carriers = [ghz * 1e9 for ghz in args.carrier_ghz] if args.carrier_ghz else [None]
    placement = None
    for carrier in carriers:
        site = site_name(name, carrier)
        traced = replace(recipe, carrier_hz=carrier or recipe.carrier_hz)
        with tempfile.TemporaryDirectory(prefix=f"rt-{site}-") as tmp:
            work = Path(tmp)
            # DeepMIMO and Sionna narrate every step on stdout; keep our own lines readable.
            with contextlib.redirect_stdout(sys.stderr):
                scene = load_scene(traced)
                if placement is None:
                    # The geometry alone decides where the base station and users go: every
                    # carrier of a site sees the same positions, user for user.
                    bs, users = place_transceivers(scene, recipe)
                    placement = bs, users[spread_users(len(users), args.max_users)]
                bs, users = placement
                trace_s = trace(scene, traced, bs, users, args.users_per_trace, work / site)
                target = convert(site, work / site, work, args.out, matrices, traced.carrier_hz)
        provenance = {
            "scenario": site,
            "site": name,
            "recipe": asdict(traced),
            "grid_density": args.grid_density,
            "max_users": args.max_users,
            "matrices": list(matrices),
            "bs_position_m": bs.round(2).tolist(),
            "n_users": len(users),
            "ue_height_m": UE_HEIGHT_M,
            "solver": solver_parameters(traced),
            "users_per_trace": args.users_per_trace,
            "trace_seconds": round(trace_s, 1),
            "versions": {pkg: version(pkg) for pkg in ("sionna-rt", "mitsuba", "drjit", "numpy", "deepmimo")},
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "built": time.strftime("%Y-%m-%d"),
        }
        if "phase" in matrices:
            provenance["phase"] = "of the baseband path coefficient a e^(-j 2 pi f_c tau), degrees"
        (target / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
        size_kb = sum(f.stat().st_size for f in target.iterdir()) / 1024
        print(
            f"{site}: {len(users)} users at {traced.carrier_hz / 1e9:g} GHz, traced in {trace_s:.1f} s, "
            f"{size_kb:.0f} kB -> {target}",
            flush=True,
        )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of at least 1")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scene", nargs="+", choices=sorted(RECIPES), default=sorted(RECIPES), help="scenarios to build (default: all)"
    )
    parser.add_argument("--out", required=True, type=Path, help="folder that receives one sub-folder per scenario")
    parser.add_argument(
        "--channel-paths",
        action="store_true",
        help="also keep each path's phase and departure angles (what the LWM channel matrices need)",
    )
    parser.add_argument(
        "--carrier-ghz",
        nargs="+",
        type=positive_float,
        metavar="GHZ",
        help="trace each site at these carriers, one scenario each named <site>_<carrier> (default: the "
        "recipe's carrier, the bare site name)",
    )
    parser.add_argument(
        "--grid-density",
        type=positive_int,
        default=1,
        metavar="K",
        help="K times as many users per side over the same area (default 1)",
    )
    parser.add_argument(
        "--max-users", type=positive_int, metavar="N", help="trace only N outdoor users spread over the grid"
    )
    parser.add_argument(
        "--users-per-trace",
        type=positive_int,
        default=USERS_PER_TRACE,
        metavar="N",
        help=f"receivers per ray-tracing call (default {USERS_PER_TRACE}); fewer bound memory on dense grids",
    )
    args = parser.parse_args(argv)
    if args.carrier_ghz and len(set(map(carrier_tag, [g * 1e9 for g in args.carrier_ghz]))) != len(args.carrier_ghz):
        parser.error(f"--carrier-ghz {args.carrier_ghz}: two carriers would share a scenario name")
    return args


def main(argv=None) -> int:
    args = parse_arguments(argv)
    if not os.environ.get("DRJIT_LIBLLVM_PATH"):
        if not Path(LLVM_LIBRARY).exists():
            # Dr.Jit would fall back to whichever LLVM it finds, and Debian's 14 and 15 abort
            # inside the first trace (LLVM ERROR: Cannot select ... fmaximum).
            sys.exit(
                f"error: ray tracing on the CPU needs LLVM 19 at {LLVM_LIBRARY} (Debian: apt-get install "
                "libllvm19, or make scenarios); DRJIT_LIBLLVM_PATH names another libLLVM"
            )
        os.environ["DRJIT_LIBLLVM_PATH"] = LLVM_LIBRARY
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.scene:
        build_site(name, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
