"""LWM SigMF Annotator: writes readouts as annotations into a recording's .sigmf-meta."""

from __future__ import annotations

import json
import time

from lwmspectro.fileio import atomic_write
from lwmspectro.readout import FIELDS, format_line

from .common import BlockBundle, ConfigError, ReadoutSink, load_bundle
from .sigmf_source import meta_path_of

LABEL = "LWM SigMF Annotator"
GENERATOR = "gr-lwmspectro"
NAMESPACE = "lwm"
EXTENSION = {"name": NAMESPACE, "version": "1.0.0", "optional": True}


class sigmf_annotator(ReadoutSink):
    """Adds one SigMF annotation per readout to `path`'s .sigmf-meta: core:sample_start is
    the readout's window_start, core:sample_count the window length at the recording's
    rate, core:label the protocol (or "invalid"), core:comment the readout line, and every
    readout field under the `lwm:` namespace.

    Everything else in the file is kept. Annotations an earlier run of this block wrote
    (core:generator "gr-lwmspectro") are replaced, so replaying a recording twice does not
    double them. The file is rewritten atomically (temporary file, then rename) at most every
    `flush_seconds` while readouts arrive, and when the flowgraph stops, so a crash never leaves
    it half written and a long recording is not rewritten for every window.

    path: the recording (base name, .sigmf-meta or .sigmf-data).
    bundle: the model bundle the receiver uses ('' = the shipped model, or the receiver's
    loaded lwmspectro Bundle), for the window length.
    flush_seconds: least time between two rewrites of the file (0 = after every readout).
    """

    def __init__(self, path, bundle: BlockBundle = "", flush_seconds: float = 5.0):
        self.path = meta_path_of(path)
        try:
            self.meta = json.loads(self.path.read_text())
        except FileNotFoundError as err:
            raise ConfigError(
                f"{LABEL}: no SigMF metadata at {self.path}; give the path of the recording "
                "whose samples the receiver reads"
            ) from err
        except json.JSONDecodeError as err:
            raise ConfigError(f"{LABEL}: {self.path} is not valid JSON ({err}); repair or regenerate it") from err
        rate = self.meta.get("global", {}).get("core:sample_rate")
        if not rate or rate <= 0:
            raise ConfigError(f"{LABEL}: {self.path} has no positive core:sample_rate in its global object")
        if flush_seconds < 0:
            raise ConfigError(f"{LABEL}: flush interval {flush_seconds} s is negative; give 0 or more seconds")
        self.sample_count = load_bundle(bundle, LABEL).params.source_window_samples(float(rate))
        self.flush_seconds = float(flush_seconds)
        self._written_at = time.monotonic()
        self.kept = [a for a in self.meta.get("annotations", []) if a.get("core:generator") != GENERATOR]
        self.added: list[dict] = []
        ReadoutSink.__init__(self, "lwm_sigmf_annotator")

    def handle_readout(self, readout: dict, message) -> None:
        self.added.append(self.annotation(readout))
        if time.monotonic() - self._written_at >= self.flush_seconds:
            self.write()

    def annotation(self, readout: dict) -> dict:
        annotation = {
            "core:sample_start": int(readout["window_start"]),
            "core:sample_count": self.sample_count,
            "core:generator": GENERATOR,
            "core:label": readout["protocol"] if readout["valid"] else "invalid",
            "core:comment": format_line(readout).strip(),
        }
        annotation.update({f"{NAMESPACE}:{key}": readout[key] for key in FIELDS})
        return annotation

    def write(self) -> None:
        """Rewrite the metadata file atomically with the kept and the added annotations."""
        meta = dict(self.meta)
        extensions = list(meta.get("global", {}).get("core:extensions", []))
        if not any(e.get("name") == NAMESPACE for e in extensions):
            extensions.append(EXTENSION)
            meta["global"] = {**meta["global"], "core:extensions": extensions}
        meta["annotations"] = sorted(self.kept + self.added, key=lambda a: a["core:sample_start"])
        # Written by hand rather than with sigmf's SigMFFile.tofile: that rewrites the file in
        # place (a crash leaves it truncated) and drops fields the library does not model.
        atomic_write(self.path, json.dumps(meta, indent=4))
        self._written_at = time.monotonic()

    def stop(self):
        self.write()
        return True
