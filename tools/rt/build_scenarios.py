"""Ray-trace the city scenes that ship inside the sionna-rt wheel and convert them to DeepMIMO v4.

Runs in the ray-tracing venv (.venv-rt: sionna-rt 2.1, numpy 2), not in the GNU Radio venv;
`lwmspectro scenarios build` starts it as a subprocess. Each scene gets one base station a few
metres above the roof or ground under it and a grid of users 1.5 m above open ground; paths
come from Sionna RT's PathSolver on the CPU, are exported with DeepMIMO's own Sionna exporter
and converted with dm.convert, then pruned to the matrices the channel model reads.

Usage: python tools/rt/build_scenarios.py [--scene NAME ...] --out DIR
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
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

LLVM_LIBRARY = "/usr/lib/x86_64-linux-gnu/libLLVM.so.19.1"
UE_HEIGHT_M = 1.5
GROUND_TOLERANCE_M = 0.5
# DeepMIMO files the loader needs: delays, powers, interaction codes (LoS), azimuths (path count),
# positions and the parameter file; everything else the converter writes is dropped to keep the
# committed scenarios small.
KEPT_FILES = re.compile(r"^(params\.json|(delay|power|inter|aoa_az|rx_pos|tx_pos)_t\d.*\.npz)$")


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


def trace(name: str, recipe: SceneRecipe, work: Path) -> tuple[Path, dict]:
    """Ray-trace one scene and write the Sionna export folder; returns it and the provenance."""
    import sionna.rt as rt
    from deepmimo.exporters.sionna_exporter import sionna_exporter
    from deepmimo.pipelines.sionna_rt.sionna_utils import create_base_scene

    scene = create_base_scene(getattr(rt.scene, recipe.sionna_scene), recipe.carrier_hz)
    bs, users = place_transceivers(scene, recipe)
    scene.add(rt.Transmitter(name="bs", position=bs.tolist(), power_dbm=0.0))
    for i, position in enumerate(users):
        scene.add(rt.Receiver(name=f"ue_{i}", position=position.tolist()))
    solver_params = {
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
    started = time.perf_counter()
    paths = rt.PathSolver()(scene=scene, **solver_params)
    trace_s = time.perf_counter() - started
    export_folder = work / name
    sionna_exporter(scene, paths, solver_params, str(export_folder))
    provenance = {
        "scenario": name,
        "recipe": asdict(recipe),
        "bs_position_m": bs.round(2).tolist(),
        "n_users": len(users),
        "ue_height_m": UE_HEIGHT_M,
        "solver": solver_params,
        "trace_seconds": round(trace_s, 1),
        "versions": {pkg: version(pkg) for pkg in ("sionna-rt", "mitsuba", "drjit", "numpy", "deepmimo")},
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "built": time.strftime("%Y-%m-%d"),
    }
    return export_folder, provenance


def convert(name: str, export_folder: Path, work: Path, out: Path) -> Path:
    """dm.convert the Sionna export, keep the files KEPT_FILES matches and move the scenario under `out`."""
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
        if KEPT_FILES.match(file.name):
            shutil.copy2(file, target / file.name)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scene", nargs="+", choices=sorted(RECIPES), default=sorted(RECIPES), help="scenarios to build (default: all)"
    )
    parser.add_argument("--out", required=True, type=Path, help="folder that receives one sub-folder per scenario")
    args = parser.parse_args(argv)
    if not os.environ.get("DRJIT_LIBLLVM_PATH") and Path(LLVM_LIBRARY).exists():
        os.environ["DRJIT_LIBLLVM_PATH"] = LLVM_LIBRARY
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.scene:
        with tempfile.TemporaryDirectory(prefix=f"rt-{name}-") as tmp:
            work = Path(tmp)
            # DeepMIMO and Sionna narrate every step on stdout; keep our own lines readable.
            with contextlib.redirect_stdout(sys.stderr):
                export_folder, provenance = trace(name, RECIPES[name], work)
                target = convert(name, export_folder, work, args.out)
            (target / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
            size_kb = sum(f.stat().st_size for f in target.iterdir()) / 1024
            print(
                f"{name}: {provenance['n_users']} users, traced in {provenance['trace_seconds']} s, "
                f"{size_kb:.0f} kB -> {target}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
