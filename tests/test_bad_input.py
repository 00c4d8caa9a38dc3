"""Bad input, one case per line: every case must fail cleanly.

A case is a ``Case(id, command, setup, status, error)``:

- ``command``: the `lwmspectro` command line after the program name, with ``{tmp}`` (the test's
  tmp_path) and the names ``setup`` returns filled in; or a callable ``(tmp_path) -> Outcome``
  for input that no command line can make (a patched ``open``, a closed pipe).
- ``setup``: a factory ``(tmp_path) -> dict`` that writes the bad input and returns the names
  the command uses (the factories below: ``recording``, ``meta_text``, ...), or None.
- ``status``: the exit status expected (2: usage error, 1: runtime failure; see `lwmspectro --help`).
- ``error``: a regex the one error line on stderr must match (it should name the file, field or
  value and the fix); None when the command must stay silent on stderr.
- ``keeps``: paths (formatted like ``command``) whose bytes the failure must leave as they were.
- ``timeout``: run as a subprocess with this limit, for input that could crash or hang the process.

Every case checks: the exit status, exactly one error line matching ``error``, no traceback, and a
stdout a ``--json`` consumer can parse (one JSON object per line, no error text). Add a case by adding
one line to the list of its area; the lists are gathered into one parametrised test at the bottom.
"""

# ruff: noqa: E501  (a case is one line of the table, however long)
from __future__ import annotations

import atexit
import contextlib
import functools
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from lwmspectro import cli

ANALYSIS_RATE = 30.72e6
ERROR_LINE = re.compile(r"^lwmspectro\b.*\berror: ")


@dataclass(frozen=True)
class Outcome:
    status: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Case:
    id: str
    command: str | Callable[[Path], Outcome]
    setup: Callable[[Path], dict] | None = None
    status: int = 1
    error: str | None = r"error"
    keeps: tuple[str, ...] = ()
    timeout: float | None = None
    marks: tuple = field(default=())


def run_in_process(argv: list[str]) -> Outcome:
    """`lwmspectro ARGV` through cli.main in this process; argparse's SystemExit is its status."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else 1
    return Outcome(status, out.getvalue(), err.getvalue())


def run_subprocess(argv: list[str], timeout: float) -> Outcome:
    """`lwmspectro ARGV` in a child process, so that a crash or a hang fails the case instead of the suite."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lwmspectro.cli", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"lwmspectro {shlex.join(argv)} still running after {timeout} s")
    return Outcome(done.returncode, done.stdout, done.stderr)


# ----- factories of bad input: each returns a setup (tmp_path) -> names for the command line ------------


def valid_global(**changes) -> dict:
    """A valid SigMF global object with `changes` applied (a value of DROP removes the key)."""
    info = {"core:datatype": "cf32_le", "core:sample_rate": ANALYSIS_RATE, "core:version": "1.0.0"}
    info.update(changes)
    return {key: value for key, value in info.items() if value is not DROP}


DROP = object()


def write_meta(path: Path, meta: object) -> None:
    """`meta` as raw bytes, raw text, or JSON."""
    if isinstance(meta, bytes):
        path.write_bytes(meta)
    else:
        path.write_text(meta if isinstance(meta, str) else json.dumps(meta))


def recording(
    meta: object | None = None, samples: int = 1000, data: Callable[[Path], None] | None = None
) -> Callable[[Path], dict]:
    """rec.sigmf-meta holding `meta` (a JSON value, or raw text or bytes; default: a valid cf32 recording) beside
    rec.sigmf-data: `samples` cf32 samples of noise, or whatever `data(path)` makes at that path."""

    def setup(tmp: Path) -> dict:
        base = tmp / "rec"
        write_meta(base.with_suffix(".sigmf-meta"), meta if meta is not None else valid_meta())
        data_path = base.with_suffix(".sigmf-data")
        if data is None:
            rng = np.random.default_rng(0)
            (rng.standard_normal(samples) + 1j * rng.standard_normal(samples)).astype(np.complex64).tofile(data_path)
        else:
            data(data_path)
        return {"meta": str(base.with_suffix(".sigmf-meta")), "data": str(data_path), "base": str(base)}

    return setup


def valid_meta(**changes) -> dict:
    """A valid SigMF metadata object whose global object has `changes` applied."""
    return {"global": valid_global(**changes), "captures": [{"core:sample_start": 0}], "annotations": []}


def with_global(**changes) -> Callable[[Path], dict]:
    """A recording whose metadata is valid but for `changes` to its global object."""
    return recording(valid_meta(**changes))


def no_data(path: Path) -> None:
    """No data file at all."""


def directory(path: Path) -> None:
    path.mkdir()


def fifo(path: Path) -> None:
    os.mkfifo(path)


def symlink_loop(path: Path) -> None:
    path.symlink_to(path)


def unreadable(path: Path) -> None:
    np.zeros(1000, np.complex64).tofile(path)
    path.chmod(0)


def refused_open(make: Callable[[Path], dict], argv: str, name: str) -> Callable[[Path], Outcome]:
    """Run `argv` with every open() of the file `name` (a key of make's names) refused with EACCES,
    as for a user without read permission (the suite may run as root, which chmod does not stop)."""

    def command(tmp: Path) -> Outcome:
        names = make(tmp)
        target = os.path.realpath(names[name])
        real_open = open

        def guarded_open(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and os.path.realpath(file) == target:
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        with mock.patch("builtins.open", guarded_open):
            return run_in_process(shlex.split(argv.format(tmp=tmp, **names)))

    return command


def broken_pipe(argv: str, setup: Callable[[Path], dict]) -> Callable[[Path], Outcome]:
    """Run `argv` in a child whose stdout reader goes away after the first line (`| head -1`)."""

    def command(tmp: Path) -> Outcome:
        names = setup(tmp)
        child = subprocess.Popen(
            [sys.executable, "-m", "lwmspectro.cli", *shlex.split(argv.format(tmp=tmp, **names))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        assert child.stdout is not None and child.stderr is not None
        first = child.stdout.readline()
        child.stdout.close()
        try:
            stderr = child.stderr.read()
            status = child.wait(timeout=120)
        finally:
            child.kill()
        # What `head -1` shows; the child's status is the pipeline's under `set -o pipefail`.
        return Outcome(0 if status in (0, 141) and first else status, "", stderr.decode())

    return command


def zero_recording(samples: int) -> Callable[[Path], dict]:
    """A cf32 recording of `samples` zeros: every window is judged invalid (all-zero), never reaching the model."""
    return recording(data=lambda path: np.zeros(samples, np.complex64).tofile(path))


WINDOW_SAMPLES = 128 * 3840  # G's observation at the analysis rate (T x R)


@functools.lru_cache(maxsize=1)
def pristine_bundle() -> Path:
    """One valid test bundle for the whole module, copied by every case that breaks one."""
    from bundle_factory import make_bundle

    folder = Path(tempfile.mkdtemp(prefix="lwm-bad-input-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return make_bundle(folder)


def bad_bundle(*edits: Callable[[Path], object]) -> Callable[[Path], dict]:
    """A valid recording beside a copy of the test bundle that `edits` (each given its folder) break."""

    def setup(tmp: Path) -> dict:
        names = recording()(tmp)
        folder = Path(shutil.copytree(pristine_bundle(), tmp / "bundle"))
        for edit in edits:
            edit(folder)
        return {**names, "bundle": str(folder)}

    return setup


def card_edit(section: str | None = None, **changes) -> Callable[[Path], None]:
    """Set `changes` in the card (in its `section` when given; a value of DROP removes the key)."""

    def edit(folder: Path) -> None:
        card = json.loads((folder / "card.json").read_text())
        target = card[section] if section else card
        target.update(changes)
        for key in [key for key, value in target.items() if value is DROP]:
            del target[key]
        (folder / "card.json").write_text(json.dumps(card))

    return edit


def flip_bytes(name: str, count: int = 64) -> Callable[[Path], None]:
    """Invert `count` bytes in the middle of the bundle's file `name` (the weights, in a graph)."""

    def edit(folder: Path) -> None:
        data = bytearray((folder / name).read_bytes())
        middle = len(data) // 2
        data[middle : middle + count] = bytes(b ^ 0xFF for b in data[middle : middle + count])
        (folder / name).write_bytes(bytes(data))

    return edit


def remove(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


SMALL_CONFIG = {"n_samples": 2, "shard_size": 2, "channel": "TDL-A"}


class _TouchesOnUnpickling:
    """An object whose unpickling creates a file: proof that a loader ran code from the input."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def pickled_scenario(tmp: Path) -> dict:
    """A copy of the test scenario whose delay array is a pickled object (unpickling it writes {tmp}/ran)."""
    folder = tmp / "scenarios"
    shutil.copytree(Path(__file__).resolve().parent / "fixtures" / "scenarios" / "tiny_site", folder / "tiny_site")
    np.savez(
        folder / "tiny_site" / "delay_t000_tx000_r001.npz",
        delay=np.array([_TouchesOnUnpickling(tmp / "ran")], dtype=object),
    )
    return {"scenarios": str(folder)}


def config_file(config: object, files: dict[str, str] | None = None) -> Callable[[Path], dict]:
    """c.json holding `config` (a JSON value, or raw text), and `files` (relative path -> text) beside it."""

    def setup(tmp: Path) -> dict:
        write_meta(tmp / "c.json", config)
        for name, text in (files or {}).items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)
        return {"config": str(tmp / "c.json")}

    return setup


def refused_access(make: Callable[[Path], dict], argv: str, folder: str) -> Callable[[Path], Outcome]:
    """Run `argv` with `folder` (made empty) reported unwritable by os.access, as for a user without write
    permission (the suite may run as root, which a folder's mode does not stop)."""

    def command(tmp: Path) -> Outcome:
        names = make(tmp)
        target = Path(folder.format(tmp=tmp))
        target.mkdir()
        real_access = os.access

        def guarded_access(path, mode, *args, **kwargs):
            return Path(path) != target and real_access(path, mode, *args, **kwargs)

        with mock.patch("os.access", guarded_access):
            return run_in_process(shlex.split(argv.format(tmp=tmp, **names)))

    return command


def _lwmspectro_child(argv: list[str], stdout=subprocess.PIPE, stderr=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lwmspectro.cli", *argv],
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _peak_rss_mb(pid: int) -> float:
    """The peak resident memory of a running process (VmHWM), in MB; 0 once it has ended."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def zmq_publisher(messages: Callable[[int], bytes], seconds: float = 6.0, burst: int = 0) -> Callable[[Path], Outcome]:
    """`run --source zmq:...` for `seconds` while this process publishes `messages(i)` (i = 0, 1, ...)
    every 5 ms, then `burst` messages of 8 MB at once; checks that stdout stays JSON readouts and that the
    child's memory stays under 1 GB."""

    def command(tmp: Path) -> Outcome:
        import time

        import zmq

        publisher = zmq.Context.instance().socket(zmq.PUB)
        publisher.setsockopt(zmq.LINGER, 0)
        publisher.bind("tcp://127.0.0.1:*")
        endpoint = publisher.getsockopt_string(zmq.LAST_ENDPOINT)
        # The child writes to files, not pipes: this loop does not read while it publishes, and a child
        # blocked on a full pipe would never end its run.
        out_path, err_path = tmp / "stdout", tmp / "stderr"
        with out_path.open("w") as out_file, err_path.open("w") as err_file:
            child = _lwmspectro_child(
                ["run", "--source", f"zmq:{endpoint}", "--rate", "1e6", "--json", "--seconds", str(seconds)],
                stdout=out_file,
                stderr=err_file,
            )
        big = np.zeros(1 << 20, np.complex64).tobytes()
        peak, i, malformed = 0.0, 0, 0
        deadline = time.monotonic() + seconds + 120
        try:
            while child.poll() is None:
                if time.monotonic() > deadline:
                    pytest.fail(f"run --source zmq still running {seconds + 120} s after it started")
                message = messages(i)
                malformed += not message or len(message) % 8 != 0
                publisher.send(message)
                i += 1
                if burst and i == 400:  # the child has subscribed and reads by now
                    for _ in range(burst):
                        publisher.send(big, copy=False)
                peak = max(peak, _peak_rss_mb(child.pid))
                time.sleep(0.005)
        finally:
            child.kill()
            publisher.close()
        out, err = out_path.read_text(), err_path.read_text()
        readouts = [json.loads(line) for line in out.splitlines()]
        assert len(readouts) >= 3 and peak < 1024, f"{len(readouts)} readouts, peak RSS {peak:.0f} MB\n{err}"
        assert not burst or readouts[-1]["samples_dropped"] > 0, err
        assert not malformed or re.search(r"[1-9]\d* malformed messages skipped", err), err
        return Outcome(child.returncode, out, err)

    return command


def interrupted(argv: str, signal_name: str = "SIGINT") -> Callable[[Path], Outcome]:
    """`argv` in a child that gets the signal once its first readout is out."""

    def command(tmp: Path) -> Outcome:
        import signal

        child = _lwmspectro_child(shlex.split(argv.format(tmp=tmp)))
        try:
            first = child.stdout.readline() if child.stdout else ""
            child.send_signal(getattr(signal, signal_name))
            out, err = child.communicate(timeout=120)
        finally:
            child.kill()
        assert first.startswith("{") and "stopped by a signal" in err, err
        return Outcome(child.returncode, first + out, err)

    return command


def _good(samples: int = 16384) -> bytes:
    rng = np.random.default_rng(samples)
    return (rng.standard_normal(samples) + 1j * rng.standard_normal(samples)).astype(np.complex64).tobytes()


GOOD = _good()


# ----- the cases, one list per area ---------------------------------------------------------------------

# fmt: off
NOT_ROOT = pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
CLASSIFY_CASES = [
    Case("classify-missing-meta", "classify {tmp}/absent.sigmf-meta", None, 1, r"absent\.sigmf-meta.*(no such|not found|missing)"),
    Case("classify-uncertain-below-no-task", "classify {meta} --uncertain-below =0.5", recording(), 2, r"--uncertain-below: '=0\.5' names no task before '='"),
    Case("classify-channel-model-bundle", "classify {meta} --bundle models/lwm", recording(), 1, r"models/lwm/card\.json: a channel model bundle \(kind 'lwm_channels'\), which embeds channel matrices"),
    Case("classify-missing-data", "classify {meta}", recording(data=no_data), 1, r"rec\.sigmf-data.*(no such|missing)"),
    Case("classify-data-is-directory", "classify {meta}", recording(data=directory), 1, r"rec\.sigmf-data.*directory"),
    Case("classify-data-is-fifo", "classify {meta}", recording(data=fifo), 1, r"rec\.sigmf-data.*not a regular file", timeout=60),
    Case("classify-data-symlink-loop", "classify {meta}", recording(data=symlink_loop), 1, r"rec\.sigmf-data.*(symbolic links|loop)"),
    Case("classify-data-unreadable", "classify {meta}", recording(data=unreadable), 1, r"rec\.sigmf-data.*permission", marks=(NOT_ROOT,)),
    Case("classify-data-open-refused", refused_open(recording(), "classify {meta}", "data"), None, 1, r"rec\.sigmf-data.*[Pp]ermission denied.*read permission"),
    Case("classify-meta-open-refused", refused_open(recording(), "classify {meta}", "meta"), None, 1, r"rec\.sigmf-meta.*[Pp]ermission denied.*read permission"),
    Case("classify-meta-is-directory", "classify {tmp}/dir.sigmf-meta", lambda tmp: (tmp / "dir.sigmf-meta").mkdir() or {}, 1, r"dir\.sigmf-meta.*directory"),
    Case("classify-meta-not-json", "classify {meta}", recording("{not json"), 1, r"rec\.sigmf-meta.*not valid JSON.*line 1"),
    Case("classify-meta-is-list", "classify {meta}", recording([]), 1, r"rec\.sigmf-meta.*JSON object.*list"),
    Case("classify-meta-lacks-global", "classify {meta}", recording({"captures": [], "annotations": []}), 1, r"rec\.sigmf-meta.*'global'"),
    Case("classify-global-is-list", "classify {meta}", recording({"global": [], "captures": []}), 1, r"rec\.sigmf-meta.*'global'.*object"),
    Case("classify-lacks-datatype", "classify {meta}", with_global(**{"core:datatype": DROP}), 1, r"rec\.sigmf-meta.*core:datatype.*missing.*cf32_le"),
    Case("classify-unknown-datatype", "classify {meta}", with_global(**{"core:datatype": "rf64_be"}), 1, r"rec\.sigmf-meta.*core:datatype 'rf64_be'.*supported: cf32_le"),
    Case("classify-datatype-not-string", "classify {meta}", with_global(**{"core:datatype": 7}), 1, r"rec\.sigmf-meta.*core:datatype 7.*supported"),
    Case("classify-captures-not-dicts", "classify {meta}", recording({"global": valid_global(), "captures": [1, 2]}), 1, r"rec\.sigmf-meta.*captures.*object"),
    Case("classify-captures-not-list", "classify {meta}", recording({"global": valid_global(), "captures": "x"}), 1, r"rec\.sigmf-meta.*captures.*list"),
    Case("classify-frequency-not-number", "classify {meta}", recording({"global": valid_global(), "captures": [{"core:frequency": "2.4 GHz"}]}), 1, r"rec\.sigmf-meta.*core:frequency '2\.4 GHz'.*number"),
    Case("classify-rate-not-numeric", "classify {meta}", with_global(**{"core:sample_rate": "fast"}), 1, r"rec\.sigmf-meta.*core:sample_rate 'fast'.*number"),
    Case("classify-rate-missing", "classify {meta}", with_global(**{"core:sample_rate": DROP}), 1, r"rec\.sigmf-meta.*core:sample_rate.*missing"),
    Case("classify-rate-boolean", "classify {meta}", with_global(**{"core:sample_rate": True}), 1, r"rec\.sigmf-meta.*core:sample_rate True.*number"),
    Case("classify-rate-negative", "classify {meta}", with_global(**{"core:sample_rate": -1}), 1, r"rec\.sigmf-meta.*core:sample_rate -1.*positive finite.*in Hz"),
    Case("classify-rate-1e12", "classify {meta}", with_global(**{"core:sample_rate": 1e12}), 1, r"rec\.sigmf-meta.*core:sample_rate 1e\+12 Hz.*between"),
    Case("classify-rate-infinity", "classify {meta}", recording('{"global": {"core:datatype": "cf32_le", "core:sample_rate": Infinity}}'), 1, r"rec\.sigmf-meta.*core:sample_rate inf.*positive finite.*in Hz"),
    Case("classify-rate-nan", "classify {meta}", recording('{"global": {"core:datatype": "cf32_le", "core:sample_rate": NaN}}'), 1, r"rec\.sigmf-meta.*core:sample_rate nan.*positive finite.*in Hz"),
    Case("classify-rate-1-hz", "classify {meta}", with_global(**{"core:sample_rate": 1}), 1, r"rec\.sigmf-meta.*core:sample_rate 1 Hz.*between", timeout=120),
    Case("classify-two-channels", "classify {meta}", with_global(**{"core:num_channels": 2}), 1, r"rec\.sigmf-meta.*core:num_channels 2.*one channel"),
    Case("classify-channels-not-integer", "classify {meta}", with_global(**{"core:num_channels": "one"}), 1, r"rec\.sigmf-meta.*core:num_channels 'one'"),
    Case("classify-threads-huge", "classify {meta} --threads 100000", recording(), 2, r"--threads.*100000.*at most \d+", timeout=120),
    Case("classify-threads-zero", "classify {meta} --threads 0", recording(), 2, r"--threads.*0.*positive"),
    Case("classify-stride-zero", "classify {meta} --stride 0", recording(), 2, r"--stride.*0.*positive"),
    Case("classify-max-windows-text", "classify {meta} --max-windows many", recording(), 2, r"--max-windows.*'many'"),
    Case("classify-uncertain-nan", "classify {meta} --uncertain-below nan", recording(), 2, r"--uncertain-below.*threshold nan.*from 0 to 1"),
    Case("classify-uncertain-over-one", "classify {meta} --uncertain-below modulation=1.5", recording(), 2, r"--uncertain-below.*1\.5 for modulation"),
    Case("classify-uncertain-unknown-task", "classify {meta} --uncertain-below snr=0.5", recording(), 2, r"--uncertain-below.*unknown 'snr'.*snr_db"),
    Case("classify-uncertain-text", "classify {meta} --uncertain-below high", recording(), 2, r"--uncertain-below.*'high' is not P or TASK=P"),
    Case("classify-track-negative", "classify {meta} --track -1", recording(), 2, r"--track.*'-1' is not a positive number of seconds"),
    Case("classify-track-nan", "classify {meta} --track nan", recording(), 2, r"--track.*'nan' is not a positive number of seconds"),
    Case("classify-track-reset-zero", "classify {meta} --track 1 --track-reset-db 0", recording(), 2, r"--track-reset-db.*'0' is not a positive number of dB"),
    Case("classify-missing-bundle", "classify {meta} --bundle {tmp}/nowhere", recording(), 1, r"nowhere: not a model bundle folder"),
    Case("classify-json-missing-data", "classify {meta} --json", recording(data=no_data), 1, r"rec\.sigmf-data"),
    Case("classify-meta-empty", "classify {meta}", recording(""), 1, r"rec\.sigmf-meta.*not valid JSON"),
    Case("classify-meta-not-utf8", "classify {meta}", recording(b"\xff\xfe{"), 1, r"rec\.sigmf-meta.*not valid JSON"),
    Case("classify-data-path-without-meta", "classify {tmp}/lone.sigmf-data", lambda tmp: (tmp / "lone.sigmf-data").write_bytes(b"\0" * 80) and {}, 1, r"lone\.sigmf-meta: no such file"),
    Case("classify-dataset-missing", "classify {meta}", with_global(**{"core:dataset": "elsewhere.bin"}), 1, r"elsewhere\.bin: no such file"),
    Case("classify-dataset-elsewhere", "classify {meta}", with_global(**{"core:dataset": "/etc/passwd"}), 1, r"core:dataset '/etc/passwd' is not the name of a file beside the metadata file"),
    Case("classify-dataset-above", "classify {meta}", with_global(**{"core:dataset": "../rec.sigmf-data"}), 1, r"core:dataset '\.\./rec\.sigmf-data' is not the name of a file beside"),
    Case("classify-header-bytes-text", "classify {meta}", recording({"global": valid_global(), "captures": [{"core:header_bytes": "8"}]}), 1, r"captures\[0\] core:header_bytes '8' is not an integer"),
    Case("classify-trailing-bytes-negative", "classify {meta}", with_global(**{"core:trailing_bytes": -4}), 1, r"core:trailing_bytes -4 is not a byte count"),
    Case("classify-annotations-not-objects", "classify {meta}", recording({"global": valid_global(), "annotations": [3]}), 1, r"'annotations' must be a list of objects"),
]

CLI_CASES = [
    Case("cli-no-command", "", None, 2, r"required: COMMAND"),
    Case("cli-unknown-command", "frobnicate", None, 2, r"invalid choice: 'frobnicate'"),
    Case("cli-unknown-option", "classify x --frobnicate", None, 2, r"unrecognized arguments: --frobnicate"),
    Case("cli-version-on-subcommand", "classify --version", None, 0, None),
    Case("cli-version-on-benchmark", "bench infer --version", None, 0, None),
    Case("cli-quiet-progress-removed", "generate --config c.json --out d --quiet", None, 2, r"unrecognized arguments: --quiet"),
    Case("cli-bench-threads-huge", "bench infer --threads 100000", None, 2, r"--threads 100000: at most \d+"),
    Case("cli-iq-keeps-an-existing-recording", "iq --protocol lte --out {base}", recording(), 1, r"rec\.sigmf-meta exists.*overwrite", keeps=("{meta}", "{data}")),
    Case("cli-broken-pipe", broken_pipe("classify {meta} --json --stride 64", zero_recording(WINDOW_SAMPLES + 40_000)), None, 0, None),
]

TRUST_CASES = [
    Case("trust-onnx-flipped-bytes", "classify {meta} --bundle {bundle}", bad_bundle(flip_bytes("expert_wifi.onnx")), 1, r"expert_wifi\.onnx: sha256 \w+\.\.\. does not match .*card\.json records.*restore it or re-export"),
    Case("trust-g-log-floor", "classify {meta} --bundle {bundle}", bad_bundle(card_edit("spectrogram", log_floor_db=-120.0)), 1, r"card\.json: spectrogram\.log_floor_db is -120\.0 but router\.onnx was exported with -200\.0"),
    Case("trust-g-hop", "classify {meta} --bundle {bundle}", bad_bundle(card_edit("spectrogram", hop=1920)), 1, r"card\.json: spectrogram\.hop is 1920 but router\.onnx was exported with 3840"),
    Case("trust-g-window", "classify {meta} --bundle {bundle}", bad_bundle(card_edit("spectrogram", window="hamming")), 1, r"card\.json: spectrogram\.window is \"hamming\" but router\.onnx was exported with \"hann\""),
    Case("trust-g-sample-rate", "classify {meta} --bundle {bundle}", bad_bundle(card_edit("spectrogram", sample_rate_hz=15.36e6), card_edit("input", sample_rate_hz=15.36e6)), 1, r"card\.json: spectrogram\.sample_rate_hz is 15360000\.0 but router\.onnx was exported with 30720000\.0"),
    Case("trust-g-normalisation", "classify {meta} --bundle {bundle}", bad_bundle(card_edit("spectrogram", normalisation="none")), 1, r"card\.json: spectrogram\.normalisation is \"none\" but router\.onnx was exported with \"per_window_zscore\""),
    Case("trust-normalisation-stats", "classify {meta} --bundle {bundle}", bad_bundle(card_edit("normalisation", mean=0.25)), 1, r"card\.json: normalisation\.mean is 0\.25 but router\.onnx was exported with 0\.0"),
    Case("trust-labels-reordered", "classify {meta} --bundle {bundle}", bad_bundle(card_edit("labels", router=["lte", "wifi", "nr", "none", "other"])), 1, r"card\.json: labels\.router is \[\"lte\", \"wifi\", .*\] but router\.onnx was exported with \[\"wifi\", \"lte\""),
    Case("trust-labels-null", "classify {meta} --bundle {bundle}", bad_bundle(card_edit(labels=None)), 1, r"card\.json: labels must be a JSON object, not null"),
    Case("trust-label-list-null", "classify {meta} --bundle {bundle}", bad_bundle(card_edit("labels", modulation=None)), 1, r"card\.json: labels\.modulation missing or empty \(it is null\)"),
    Case("trust-missing-file", "classify {meta} --bundle {bundle}", bad_bundle(remove("heads_nr.onnx")), 1, r"heads_nr\.onnx: missing; card\.json names it"),
    Case("trust-card-not-json", "classify {meta} --bundle {bundle}", bad_bundle(lambda folder: (folder / "card.json").write_text("{oops")), 1, r"card\.json: not valid JSON"),
    Case("trust-card-is-list", "classify {meta} --bundle {bundle}", bad_bundle(lambda folder: (folder / "card.json").write_text("[]")), 1, r"card\.json: not a JSON object but a list"),
    Case("trust-checksum-missing", "classify {meta} --bundle {bundle}", bad_bundle(card_edit(sha256=DROP)), 1, r"card\.json: missing keys \['sha256'\]"),
    Case("trust-older-schema", "classify {meta} --bundle {bundle}", bad_bundle(card_edit(schema_version=1, sha256=DROP)), 1, r"card\.json: schema_version 1 records no file checksums.*lwmspectro export --stamp DIR"),
    Case("trust-stamp-refuses-a-changed-bundle", "export --stamp {bundle}", bad_bundle(flip_bytes("router.onnx")), 1, r"router\.onnx: sha256 \w+\.\.\. does not match", keeps=("{bundle}/card.json", "{bundle}/router.onnx")),
    Case("trust-stamp-not-a-bundle", "export --stamp {tmp}/nowhere", None, 1, r"nowhere/card\.json: missing; --stamp takes a bundle folder"),
    Case("trust-stamp-with-run", "export --stamp {bundle} --run {tmp}/run", bad_bundle(), 2, r"--stamp upgrades a bundle in place: it takes neither --run nor --out"),
    Case("trust-export-without-run", "export --out {tmp}/b", None, 2, r"--run DIR and --out DIR are required \(or --stamp DIR"),
    Case("trust-scenario-object-array", "iq --protocol lte --channel site --scenario tiny_site --user 0 --scenario-folder {scenarios} --out {tmp}/rec", pickled_scenario, 1, r"delay_t000_tx000_r001\.npz: not a plain numeric array file .* object arrays are refused"),
    Case("trust-file-outside-bundle", "classify {meta} --bundle {bundle}", bad_bundle(card_edit("files", router="/etc/passwd")), 1, r"card\.json: files\.router must be a file name in the bundle folder"),
]

GENERATE_CASES = [
    Case("gen-n-samples-absurd", "generate --config {config} --out {tmp}/ds", config_file({"n_samples": 1e15}), 1, r"c\.json: n_samples: 1e\+15 is out of range; valid: 1 to 10000000"),
    Case("gen-n-samples-text", "generate --config {config} --out {tmp}/ds", config_file({"n_samples": "many"}), 1, r"c\.json: n_samples: 'many' is not an integer"),
    Case("gen-n-samples-fraction", "generate --config {config} --out {tmp}/ds", config_file({"n_samples": 2.5}), 1, r"c\.json: n_samples: 2\.5 is not an integer"),
    Case("gen-n-samples-boolean", "generate --config {config} --out {tmp}/ds", config_file({"n_samples": True}), 1, r"c\.json: n_samples: True is not an integer"),
    Case("gen-shard-size-zero", "generate --config {config} --out {tmp}/ds", config_file({"shard_size": 0}), 1, r"c\.json: shard_size: 0 is out of range; valid: 1 to"),
    Case("gen-seed-negative", "generate --config {config} --out {tmp}/ds", config_file({"seed": -1}), 1, r"c\.json: seed: -1 is out of range"),
    Case("gen-class-weight-text", "generate --config {config} --out {tmp}/ds", config_file({"classes": {"wifi": "a"}}), 1, r"c\.json: classes\.wifi: 'a' is not a class weight"),
    Case("gen-class-weights-zero", "generate --config {config} --out {tmp}/ds", config_file({"classes": {"wifi": 0}}), 1, r"c\.json: classes: .* needs a positive weight"),
    Case("gen-snr-text", "generate --config {config} --out {tmp}/ds", config_file({"snr_db": ["x"]}), 1, r"c\.json: SNR 'x' is not a number of dB"),
    Case("gen-snr-list-text", "generate --config {config} --out {tmp}/ds", config_file({"snr_db": "high"}), 1, r"c\.json: snr_db: 'high' is not a list"),
    Case("gen-impairment-probability", "generate --config {config} --out {tmp}/ds", config_file({"impairment_probability": 2}), 1, r"c\.json: impairment_probability: 2 is out of range; valid: 0 to 1"),
    Case("gen-delay-spread-null", "generate --config {config} --out {tmp}/ds", config_file({"delay_spread_s": None}), 1, r"c\.json: delay_spread_s: None is not a number"),
    Case("gen-spectrogram-text", "generate --config {config} --out {tmp}/ds", config_file({"spectrogram": {"n_fft": "big"}}), 1, r"c\.json: spectrogram\.n_fft: 'big' is not an integer"),
    Case("gen-config-is-list", "generate --config {config} --out {tmp}/ds", config_file([1]), 1, r"c\.json: a generator config is a JSON object"),
    Case("gen-config-not-json", "generate --config {config} --out {tmp}/ds", config_file("{n_samples"), 1, r"c\.json: not valid JSON"),
    Case("gen-n-samples-option-zero", "generate --config {config} --out {tmp}/ds --n-samples 0", config_file({}), 2, r"--n-samples.*0"),
    Case("gen-views-unknown", "generate --config {config} --out {tmp}/ds --views wideband,nope", config_file({}), 2, r"--views: unknown views\.1 'nope'; valid choices: wideband, "),
    Case("gen-workers-huge", "generate --config {config} --out {tmp}/ds --workers 100000", config_file({}), 2, r"--workers: 100000 workers: at most \d+"),
    Case("gen-shard-out-of-range", "generate --config {config} --out {tmp}/ds --shard 5/2", config_file({}), 2, r"--shard 5/2: need 0 <= i < N"),
    Case("gen-out-parent-is-file", "generate --config {config} --out {tmp}/c.json/ds", config_file(SMALL_CONFIG), 1, r"--out .*c\.json/ds: .*c\.json is a file, not a folder"),
    Case("gen-out-is-file", "generate --config {config} --out {config}", config_file(SMALL_CONFIG), 1, r"c\.json is a file, not a folder", keeps=("{config}",)),
    Case("gen-out-unwritable", refused_access(config_file(SMALL_CONFIG), "generate --config {config} --out {tmp}/locked/ds", "{tmp}/locked"), None, 1, r"--out .*locked/ds: the folder .*locked is not writable"),
    Case("gen-corrupt-sidecar", "generate --config {config} --out {tmp}/ds", config_file(SMALL_CONFIG, {"ds/shard-000000.json": "{cut"}), 1, r"ds/shard-000000\.json: a corrupt shard sidecar.*delete shard-000000\.json, \.npy and \.jsonl", keeps=("{tmp}/ds/shard-000000.json",)),
    Case("gen-sidecar-not-object", "generate --config {config} --out {tmp}/ds", config_file(SMALL_CONFIG, {"ds/shard-000000.json": "[]"}), 1, r"shard-000000\.json: a corrupt shard sidecar \(no shard count\)"),
    Case("gen-corrupt-manifest", "generate --config {config} --out {tmp}/ds", config_file(SMALL_CONFIG, {"ds/manifest.json": "{"}), 1, r"ds/manifest\.json: not a dataset manifest.*delete it to resume", keeps=("{tmp}/ds/manifest.json",)),
    Case("iq-protocol-unknown", "iq --protocol bogus --out {tmp}/rec", None, 2, r"--protocol: invalid choice: 'bogus'"),
    Case("iq-bandwidth-zero", "iq --protocol lte --bandwidth 0 --out {tmp}/rec", None, 2, r"--bandwidth: 0 is not a positive number"),
    Case("iq-bandwidth-not-allowed", "iq --protocol lte --bandwidth 7e6 --channel TDL-A --out {tmp}/rec", None, 2, r"lte bandwidth \(Hz\).*7000000"),
    Case("iq-seed-negative", "iq --protocol lte --seed -1 --out {tmp}/rec", None, 2, r"--seed: -1 is negative"),
    Case("iq-seconds-huge", "iq --protocol lte --seconds 1e6 --out {tmp}/rec", None, 2, r"--seconds 1e\+06: at most 2 s per recording.*several recordings"),
    Case("iq-seconds-zero", "iq --protocol lte --seconds 0 --out {tmp}/rec", None, 2, r"--seconds 0: the length must be a positive number of seconds"),
    Case("iq-seconds-negative", "iq --protocol lte --seconds -1 --out {tmp}/rec", None, 2, r"--seconds -1: the length must be a positive"),
    Case("iq-seconds-nan", "iq --protocol lte --seconds nan --out {tmp}/rec", None, 2, r"--seconds nan: the length must be a positive"),
    Case("iq-seconds-under-a-sample", "iq --protocol lte --seconds 1e-9 --out {tmp}/rec", None, 2, r"--seconds 1e-09: shorter than one sample at 30.72 MS/s"),
    Case("iq-speed-absurd", "iq --protocol lte --speed 1e9 --out {tmp}/rec", None, 2, r"--speed 1e\+09: out of range; valid: 0 to 500 km/h"),
    Case("iq-speed-negative", "iq --protocol wifi --speed -3 --out {tmp}/rec", None, 2, r"--speed -3: out of range"),
    Case("iq-speed-while-static", "iq --protocol lte --mobility static --speed 40 --channel TDL-A --out {tmp}/rec", None, 2, r"--speed 40 km/h at .* GHz is a Doppler of .* not static"),
    Case("iq-snr-for-none", "iq --protocol none --snr 5 --out {tmp}/rec", None, 2, r"--snr has no effect with --protocol none; options it takes: none but --seconds"),
    Case("iq-carrier-for-none", "iq --protocol none --carrier 2.4e9 --out {tmp}/rec", None, 2, r"--carrier has no effect with --protocol none"),
    Case("iq-modulation-for-other", "iq --protocol other --modulation QPSK --out {tmp}/rec", None, 2, r"--modulation has no effect with --protocol other; options it takes: --other-kind, --snr"),
    Case("iq-other-kind-for-lte", "iq --protocol lte --other-kind cw --out {tmp}/rec", None, 2, r"--other-kind has no effect with --protocol lte; options it takes: --bandwidth, --modulation"),
    Case("iq-user-with-standard-channel", "iq --protocol nr --channel TDL-C --user 3 --out {tmp}/rec", None, 2, r"--user has no effect with --channel TDL-C"),
    Case("iq-carrier-absurd", "iq --protocol lte --carrier 1e15 --out {tmp}/rec", None, 2, r"--carrier 1e\+15: out of range; valid: 1e\+06 to 1e\+11 Hz"),
    Case("iq-snr-out-of-range", "iq --protocol lte --snr 100 --out {tmp}/rec", None, 2, r"--snr 100: out of range; valid: -30 to 60 dB"),
    Case("iq-out-parent-is-file", "iq --protocol none --out {tmp}/c.json/rec", config_file({}), 1, r"--out .*c\.json/rec: .*c\.json is a file, not a folder"),
]

RUN_CASES: list[Case] = [
    Case("run-source-unknown", "run --source radio:1", None, 2, r"--source 'radio:1' is not understood; valid: synthetic, sigmf:PATH, zmq:ADDR"),
    Case("run-annotate-needs-a-recording", "run --source synthetic --annotate", None, 2, r"--annotate needs --source sigmf:PATH"),
    Case("run-rate-negative", "run --source zmq:tcp://127.0.0.1:5555 --rate -1", None, 2, r"--rate: -1 is not a positive number"),
    Case("run-rate-nan", "run --source zmq:tcp://127.0.0.1:5555 --rate nan", None, 2, r"--rate: 'nan' is not a finite number"),
    Case("run-seconds-negative", "run --source synthetic --seconds -1", None, 2, r"--seconds: -1 is negative"),
    Case("run-seconds-nan", "run --source synthetic --seconds nan", None, 2, r"--seconds: 'nan' is not a finite number"),
    Case("run-max-rate-nan", "run --source synthetic --max-rate nan", None, 2, r"--max-rate: 'nan' is not a finite number"),
    Case("run-one-in-zero", "run --source synthetic --one-in 0", None, 2, r"--one-in: 0 is not a positive integer"),
    Case("run-hop-negative", "run --source synthetic --hop -1", None, 2, r"--hop: -1 is negative"),
    Case("demo-seconds-nan", "demo --seconds nan", None, 2, r"--seconds: 'nan' is not a finite number"),
    Case("demo-seconds-zero", "demo --seconds 0", None, 2, r"--seconds: 0 is not a positive number"),
    Case("bench-flowgraph-seconds-nan", "bench flowgraph --seconds nan", None, 2, r"--seconds: 'nan' is not a finite number", timeout=60),
    Case("bench-flowgraph-seconds-zero", "bench flowgraph --seconds 0", None, 2, r"--seconds: 0 is not a positive number"),
    Case("bench-flowgraph-no-observations", "bench flowgraph --observations 0", None, 2, r"--observations: 0 is not a positive integer"),
    Case("bench-generate-seconds-nan", "bench generate --seconds nan", None, 2, r"--seconds: 'nan' is not a finite number"),
    Case("bench-generate-seconds-negative", "bench generate --seconds -1", None, 2, r"--seconds: -1 is not a positive number"),
    Case("bench-infer-seconds-nan", "bench infer --seconds nan", None, 2, r"--seconds: 'nan' is not a finite number"),
    Case("lwm-downstream-fractions-nan", "lwm downstream --bundle models/lwm --task los --synthetic 10 --fractions nan --out {tmp}/o.json", None, 2, r"--fractions 'nan': give one or more positive numbers"),
    Case("score-min-snr-nan", "score {tmp} --min-snr nan", None, 2, r"--min-snr: 'nan' is not a finite number"),
    Case("embed-out-folder-missing", "embed --scenario etoile --bundle models/lwm --out {tmp}/absent/e.npz", None, 2, r"--out .*absent/e\.npz: its folder .*absent does not exist"),
    Case("embed-out-a-folder", "embed --scenario etoile --bundle models/lwm --out {tmp}/made.npz", lambda tmp: (tmp / "made.npz").mkdir() or {}, 2, r"--out .*made\.npz: .*made\.npz is a folder; name a file in it"),
    Case("lwm-downstream-out-folder-missing", "lwm downstream --bundle models/lwm --task los --synthetic 10 --out {tmp}/absent/o.json", None, 2, r"--out .*absent/o\.json: its folder .*absent does not exist"),
    Case("classify-a-folder", "classify {tmp}", None, 1, r"a folder, not a SigMF recording; give a recording's \.sigmf-meta"),
    Case("embed-scenario-empty", "embed --scenario '' --bundle models/lwm --out {tmp}/e.npz", None, 2, r"give either a \.npy of channels or --scenario NAME"),
    Case("run-zmq-bad-address", "run --source zmq:nowhere", None, 1, r"LWM ZMQ Source: cannot connect to 'nowhere'.*tcp://127\.0\.0\.1:5555"),
    Case("run-missing-recording", "run --source sigmf:{tmp}/absent.sigmf-meta", None, 1, r"LWM SigMF Source: no SigMF recording at .*absent"),
    Case("run-recording-unsupported-datatype", "run --source sigmf:{meta}", with_global(**{"core:datatype": "ru8"}), 1, r"core:datatype 'ru8'.*supported: cf32_le"),
    Case("run-recording-captures-null", "run --source sigmf:{meta}", recording({"global": valid_global(), "captures": None}), 1, r"LWM SigMF Source: .*'captures' must be a list of objects"),
    Case("run-recording-annotations-text", "run --source sigmf:{meta}", recording({"global": valid_global(), "annotations": "x"}), 1, r"LWM SigMF Source: .*'annotations' must be a list of objects"),
    Case("run-recording-global-null", "run --source sigmf:{meta}", recording({"global": None}), 1, r"LWM SigMF Source: .*lacks 'global'"),
    Case("run-recording-no-global", "run --source sigmf:{meta}", recording({"captures": []}), 1, r"LWM SigMF Source: .*lacks 'global'"),
    Case("run-recording-meta-is-list", "run --source sigmf:{meta}", recording([1, 2]), 1, r"LWM SigMF Source: .*holds a JSON object, this one holds a list"),
    Case("run-recording-datatype-number", "run --source sigmf:{meta}", with_global(**{"core:datatype": 5}), 1, r"LWM SigMF Source: .*core:datatype 5 is not supported"),
    Case("run-recording-rate-text", "run --source sigmf:{meta}", with_global(**{"core:sample_rate": "30720000"}), 1, r"LWM SigMF Source: .*core:sample_rate '30720000' is not a number"),
    Case("run-recording-rate-boolean", "run --source sigmf:{meta}", with_global(**{"core:sample_rate": True}), 1, r"LWM SigMF Source: .*core:sample_rate True is not a number"),
    Case("run-recording-no-channels", "run --source sigmf:{meta}", with_global(**{"core:num_channels": 0}), 1, r"LWM SigMF Source: .*core:num_channels 0 is not a positive integer"),
    Case("run-recording-data-missing", "run --source sigmf:{meta}", recording(data=no_data), 1, r"LWM SigMF Source: .*rec\.sigmf-data: no such file"),
    Case("run-recording-dataset-elsewhere", "run --source sigmf:{meta}", with_global(**{"core:dataset": "/etc/passwd"}), 1, r"core:dataset '/etc/passwd' is not the name of a file beside"),
    Case("run-recording-datetime-text", "run --source sigmf:{meta}", recording({"global": valid_global(), "captures": [{"core:sample_start": 0, "core:datetime": "yesterday"}]}), 1, r"LWM SigMF Source: .*core:datetime 'yesterday' is not an ISO 8601 time"),
    Case("run-missing-bundle", "run --source synthetic --bundle {tmp}/nowhere", None, 1, r"LWM Classifier: bundle .*nowhere"),
    Case("run-zmq-odd-empty-messages", zmq_publisher(lambda i: (GOOD, GOOD[:-3], GOOD, b"", GOOD, b"\x01")[i % 6]), None, 0, None, marks=(pytest.mark.slow,)),
    Case("run-zmq-burst-above-real-time", zmq_publisher(lambda i: GOOD, burst=200), None, 0, None, marks=(pytest.mark.slow,)),
    Case("run-ctrl-c", interrupted("run --source synthetic --json"), None, 130, None, marks=(pytest.mark.slow,)),
    Case("run-sigterm", interrupted("run --source synthetic --json", "SIGTERM"), None, 143, None, marks=(pytest.mark.slow,)),
    Case("run-broken-pipe", broken_pipe("run --source synthetic --json", lambda tmp: {}), None, 0, None, marks=(pytest.mark.slow,)),
    Case("demo-broken-pipe", broken_pipe("demo --seconds 60", lambda tmp: {}), None, 0, None, marks=(pytest.mark.slow,)),
]


def train_command(argv: str, setup: Callable[[Path], dict] | None = None) -> Callable[[Path], Outcome]:
    """`lwmspectro-train ARGV` through its main in this process (the training package's own command)."""

    def command(tmp: Path) -> Outcome:
        from lwmspectro_train import cli as train_cli

        names = setup(tmp) if setup else {}
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = train_cli.main(shlex.split(argv.format(tmp=tmp, **names)))
            except SystemExit as stop:
                status = stop.code if isinstance(stop.code, int) else 1
        return Outcome(status, out.getvalue(), err.getvalue())

    return command


def training_run(checkpoint: Callable[[Path], object] | None = None, files: dict[str, str] | None = None) -> Callable[[Path], dict]:
    """A tiny run config (run.json) over a toy dataset, with the wifi pretraining checkpoint made by
    `checkpoint(path)` and `files` (relative to the run folder -> text)."""

    def setup(tmp: Path) -> dict:
        from test_train_toydata import write_toy_dataset

        from train_fixtures import tiny_config

        train = write_toy_dataset(tmp / "train", n=40)
        (tmp / "run.json").write_text(json.dumps(tiny_config(tmp / "run", train)))
        if checkpoint is not None:
            path = tmp / "run" / "pretrain" / "wifi" / "checkpoint.pt"
            path.parent.mkdir(parents=True)
            checkpoint(path)
        for name, text in (files or {}).items():
            (tmp / "run" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / "run" / name).write_text(text)
        return {"config": str(tmp / "run.json"), "checkpoint": str(tmp / "run" / "pretrain" / "wifi" / "checkpoint.pt")}

    return setup


def torch_file(value: object, keep_bytes: int | None = None) -> Callable[[Path], None]:
    """`value` saved with torch.save, cut to its first `keep_bytes` bytes when given."""

    def write(path: Path) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save(value, buffer)
        path.write_bytes(buffer.getvalue()[:keep_bytes])

    return write


RESUME = "pretrain --config {config} --experts wifi --no-progress --resume"
TRAIN_CASES = [
    Case("train-resume-truncated-checkpoint", train_command(RESUME, training_run(torch_file({"format": 1, "model": {}}, keep_bytes=300))), None, 1, r"checkpoint\.pt: not a readable checkpoint .*delete it to restart the stage \(then run without --resume\)"),
    Case("train-resume-garbage-checkpoint", train_command(RESUME, training_run(lambda path: path.write_bytes(b"not a checkpoint" * 64))), None, 1, r"checkpoint\.pt: not a readable checkpoint .*delete it"),
    Case("train-resume-empty-checkpoint", train_command(RESUME, training_run(lambda path: path.write_bytes(b""))), None, 1, r"checkpoint\.pt: not a readable checkpoint .*delete it"),
    Case("train-resume-pickled-object", train_command(RESUME, training_run(lambda path: path.write_bytes(__import__("pickle").dumps(Path("x"), protocol=2)))), None, 1, r"checkpoint\.pt: not a readable checkpoint .*delete it"),
    Case("train-resume-checkpoint-not-dict", train_command(RESUME, training_run(torch_file([1, 2]))), None, 1, r"checkpoint\.pt: not a checkpoint \(it holds a list\); delete it"),
    Case("train-resume-checkpoint-lacks-entries", train_command(RESUME, training_run(torch_file({"format": 1}))), None, 1, r"checkpoint\.pt: a checkpoint without \['model', .*delete it"),
    Case("train-run-config-corrupt", train_command(RESUME, training_run(files={"config.json": "{"})), None, 1, r"run/config\.json: not valid JSON.*restore it, or delete it"),
    Case("train-set-epochs-text", train_command("pretrain --config small --set stages.pretrain.epochs=abc"), None, 2, r"stages\.pretrain\.epochs: 'abc' is not an integer"),
    Case("train-set-epochs-zero", train_command("pretrain --config small --set stages.pretrain.epochs=0"), None, 2, r"stages\.pretrain\.epochs: 0 is out of range; valid: 1 to 100000"),
    Case("train-set-epochs-fraction", train_command("pretrain --config small --set stages.heads.epochs=2.5"), None, 2, r"stages\.heads\.epochs: 2\.5 is not an integer"),
    Case("train-set-lr-text", train_command("router --config small --set stages.router.lr=fast"), None, 2, r"stages\.router\.lr: 'fast' is not a number"),
    Case("train-set-batch-huge", train_command("router --config small --set stages.router.batch_size=1e12"), None, 2, r"stages\.router\.batch_size: 1e\+12 is out of range"),
    Case("train-set-seed-text", train_command("pretrain --config small --set seed=one"), None, 2, r"seed: 'one' is not an integer"),
    Case("train-set-section-null", train_command("pretrain --config small --set model=null"), None, 2, r"model: None is not an object"),
    Case("train-set-stage-not-section", train_command("pretrain --config small --set stages.pretrain=5"), None, 2, r"stages\.pretrain: 5 is not a section"),
    Case("train-set-workers-negative", train_command("pretrain --config small --set loader.workers=-1"), None, 2, r"loader\.workers: -1 is out of range; valid: 0 to 256"),
    Case("train-set-experts-unknown", train_command("pretrain --config small --set experts=wifi,gsm"), None, 2, r"unknown expert 'gsm'; valid choices: wifi, lte, nr"),
    Case("train-set-experts-none", train_command("pretrain --config small --set experts=[]"), None, 2, r"experts: none named; list one or more of wifi, lte, nr"),
    Case("train-config-is-folder", train_command("pretrain --config {tmp}"), None, 2, r"config file .* is a folder; give a \.json file or a config name"),
    Case("train-experts-empty", train_command("pretrain --config small --experts ''"), None, 2, r"--experts '' names no expert; give some of wifi, lte, nr"),
    Case("train-resume-junk-checkpoint", train_command(RESUME, training_run(lambda path: path.write_bytes(b"junk\n"))), None, 1, r"checkpoint\.pt: not a readable checkpoint .*delete it"),
]

# fmt: on

ALL_CASES = CLASSIFY_CASES + CLI_CASES + TRUST_CASES + GENERATE_CASES + RUN_CASES + TRAIN_CASES


def snapshot(paths: list[Path]) -> dict[Path, bytes | None]:
    return {path: path.read_bytes() if path.is_file() else None for path in paths}


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id, marks=case.marks) for case in ALL_CASES])
def test_bad_input_fails_cleanly(case: Case, tmp_path: Path) -> None:
    if callable(case.command):
        names: dict = {}
        kept = snapshot([Path(path.format(tmp=tmp_path)) for path in case.keeps])
        outcome = case.command(tmp_path)
        argv: list[str] = []
    else:
        names = case.setup(tmp_path) if case.setup else {}
        argv = shlex.split(case.command.format(tmp=tmp_path, **names))
        kept = snapshot([Path(path.format(tmp=tmp_path, **names)) for path in case.keeps])
        outcome = run_subprocess(argv, case.timeout) if case.timeout else run_in_process(argv)

    report = f"status {outcome.status}\nstdout:\n{outcome.stdout[-2000:]}\nstderr:\n{outcome.stderr[-4000:]}"
    assert outcome.status == case.status, report
    assert "Traceback" not in outcome.stderr, report
    errors = [line for line in outcome.stderr.splitlines() if ERROR_LINE.search(line)]
    if case.error is None:
        assert not errors, report
    else:
        assert len(errors) == 1, report
        assert re.search(case.error, errors[0]), f"{errors[0]!r} does not match {case.error!r}"
    for line in outcome.stdout.splitlines():
        assert not ERROR_LINE.search(line), f"an error line on stdout\n{report}"
        if "--json" in argv and line.strip():
            assert isinstance(json.loads(line), dict), f"stdout is not one JSON object per line\n{report}"
    assert snapshot(list(kept)) == kept, "a failing command changed a file it should have kept"
