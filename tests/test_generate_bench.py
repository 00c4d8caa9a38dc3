"""`lwmspectro bench generate`: examples/s per protocol of G alone and of a views config, against the target."""

import json
import re

import pytest

from lwmspectro import cli
from lwmspectro.benchmarks.generate import TARGET_PER_CORE


def test_bench_generate_reports_each_protocol_and_the_mix_against_the_target(tmp_path, capsys):
    config = tmp_path / "views.json"
    config.write_text(
        json.dumps(
            {
                "classes": {"nr": 1.0, "none": 1.0},
                "channel": "TDL-C",
                "views": ["wideband", "cp_profile"],
                "capture": {"source_rates_hz": [20e6]},
            }
        )
    )
    assert (
        cli.main(["bench", "generate", "--seconds", "0.01", "--channel", "TDL-A", "--views-config", str(config)]) == 0
    )
    out = capsys.readouterr().out
    assert f"target {TARGET_PER_CORE:g} labelled examples/s per core" in out and "CPU time" in out
    g_alone, views = out.split("G alone, realised at its frames")[1].split(str(config))
    rows = re.findall(r"^(\w+) +([\d.]+) +([\d.]+)x", g_alone, re.M)
    assert [row[0] for row in rows] == ["wifi", "lte", "nr", "none", "other", "mix"]
    for _, rate, share in rows:
        assert float(share) == pytest.approx(float(rate) / TARGET_PER_CORE, abs=1e-3)
    assert "wideband, cp_profile; 100% through the capture chain" in views
    whole, regions = views.split("only the samples the views read formed")
    for section in (whole, regions):
        assert [row[0] for row in re.findall(r"^(\w+) +([\d.]+) +([\d.]+)x", section, re.M)] == ["nr", "none", "mix"]
