"""`lwmspectro score REC... | FOLDER...`: classify labelled SigMF recordings and judge every
window against the truth their metadata states (`lwm:protocol`, and for WiFi, LTE and NR
`lwm:modulation`, `lwm:snr_db` and `lwm:mobility` where known; readout.judge), so that a user can
measure the model on recordings of their own or of other tools: one line per recording, then the
accuracy per true protocol and over all, per window and, with --track, tracked."""

from __future__ import annotations

import argparse
import collections
import json
import logging
import math
from pathlib import Path

from ..cli import add_readout_arguments, finite_float, readout_tracker, thread_count, uncertain_below

HELP = "classify labelled SigMF recordings and score the readouts against their lwm: truth"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "recordings", nargs="+", help="SigMF recordings (.sigmf-meta, .sigmf-data or the base name) or folders of them"
    )
    parser.add_argument("--bundle", help="model bundle folder (default: $LWMSPECTRO_BUNDLE, else models/small)")
    parser.add_argument(
        "--min-snr",
        type=finite_float,
        default=None,
        metavar="DB",
        help="judge modulation, SNR and mobility only on recordings whose true SNR is at least DB (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="print the scores as one JSON object instead of text")
    parser.add_argument(
        "--threads", type=thread_count, help="ONNX Runtime intra-op threads (default: up to 4 cores available)"
    )
    add_readout_arguments(parser)


def recording_paths(names: list[str]) -> list[Path]:
    """The recordings `names` give, each folder read as the recordings in it (sorted)."""
    from ..sigmf_io import RecordingError

    paths: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            found = sorted(path.glob("*.sigmf-meta"))
            if not found:
                raise RecordingError(f"{path}: a folder without SigMF recordings (*.sigmf-meta); give recordings")
            paths += found
        else:
            paths.append(path)
    return paths


def truth_of(labels: dict, path: Path, min_snr_db: float | None) -> dict:
    """The truth a recording's `lwm:` labels state, the values other than the protocol dropped
    below `min_snr_db`."""
    from ..labels import ALLOWED_MODULATIONS, MOBILITY_CLASSES, MODULATIONS, ROUTER_CLASSES
    from ..sigmf_io import RecordingError

    protocol = labels.get("protocol")
    if protocol not in ROUTER_CLASSES:
        raise RecordingError(
            f"{path}: lwm:protocol is {protocol!r}; label the recording with one of {', '.join(ROUTER_CLASSES)} "
            "under the global object's lwm:protocol to score it"
        )
    truth = {key: labels.get(key) for key in ("protocol", "modulation", "snr_db", "mobility")}
    allowed = {"modulation": ALLOWED_MODULATIONS.get(protocol, MODULATIONS), "mobility": MOBILITY_CLASSES}
    for key, valid in allowed.items():
        if truth[key] is not None and truth[key] not in valid:
            raise RecordingError(
                f"{path}: lwm:{key} is {truth[key]!r}, not a {key} of a {protocol} recording; "
                f"label it with one of {', '.join(valid)} or remove it"
            )
    snr_db = truth["snr_db"]
    if snr_db is not None and (
        isinstance(snr_db, bool) or not isinstance(snr_db, (int, float)) or not math.isfinite(snr_db)
    ):
        raise RecordingError(
            f"{path}: lwm:snr_db is {snr_db!r}, not a number of dB; write it as a JSON number or remove it"
        )
    if min_snr_db is not None and (snr_db is None or snr_db < min_snr_db):
        truth.update(modulation=None, snr_db=None, mobility=None)
    return truth


def _percent(tally, task: str) -> str:
    judged = tally.judged[task]
    return f"{100 * tally.correct[task] / judged:5.1f} % ({tally.correct[task]}/{judged})" if judged else "-"


def run(args: argparse.Namespace) -> int:
    from ..bundle import load_bundle
    from ..readout import JUDGED_TASKS, Tally, task_name, truth_text
    from ..runtime import Runtime
    from ..sigmf_io import SigMFReader

    # Every recording and its truth are checked first: a bad one fails in a moment, before the bundle loads.
    readers = [SigMFReader(path) for path in recording_paths(args.recordings)]
    truths = [truth_of(reader.labels, reader.path, args.min_snr) for reader in readers]
    runtime = Runtime(load_bundle(args.bundle), intra_op_threads=args.threads)
    bins = runtime.snr_bins_db
    overall = Tally(bins)
    by_protocol: collections.defaultdict[str, Tally] = collections.defaultdict(lambda: Tally(bins))
    rows = []
    for reader, truth in zip(readers, truths):
        tally, read_as = Tally(bins), collections.Counter[str]()
        readouts = runtime.iter_classify_iq(
            reader, reader.sample_rate_hz, tracker=readout_tracker(args, runtime), uncertain_below=uncertain_below(args)
        )
        for readout in readouts:
            for each in (tally, overall, by_protocol[truth["protocol"]]):
                each.record(readout, truth)
            read_as[readout["protocol"] if readout["valid"] else "invalid"] += 1
        rows.append((reader, truth, tally, read_as))
        if not args.json:
            judged = "  ".join(
                f"{task_name(task)} {_percent(tally, task)}" for task in JUDGED_TASKS if tally.judged[task]
            )
            print(
                f"{reader.path.name}: truth {truth_text(truth)} at {reader.sample_rate_hz / 1e6:g} MS/s; "
                f"{tally.readouts} windows read as {dict(read_as.most_common())}; {judged}",
                flush=True,
            )
    groups = [*sorted(by_protocol.items()), ("all", overall)]
    if args.json:
        print(
            json.dumps(
                {
                    "bundle": str(runtime.bundle_dir),
                    "recordings": [
                        {
                            "path": str(reader.path),
                            "truth": truth,
                            "read_as": dict(read_as),
                            "accuracy": tally.accuracy(),
                            "judged": tally.judged,
                            "invalid": tally.invalid,
                        }
                        for reader, truth, tally, read_as in rows
                    ],
                    "by_protocol": {
                        name: {"accuracy": t.accuracy(), "judged": t.judged, "invalid": t.invalid} for name, t in groups
                    },
                }
            )
        )
        return 0
    tasks = [task for task in JUDGED_TASKS if overall.judged[task]]
    tracked = " and tracked" if args.track else ""
    print(f"\n{len(rows)} recordings, bundle {runtime.bundle_dir}; accuracy per window{tracked}")
    print("| true protocol | windows | invalid |" + "".join(f" {task_name(task)} |" for task in tasks))
    print("|---|---|---|" + "---|" * len(tasks))
    for name, tally in groups:
        print(
            f"| {name} | {tally.readouts} | {tally.invalid} |"
            + "".join(f" {_percent(tally, task)} |" for task in tasks)
        )
    return 0
