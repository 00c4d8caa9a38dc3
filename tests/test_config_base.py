"""The one config base: every config built from a dict refuses unknown keys, naming them and the valid ones."""

import json
from dataclasses import dataclass

import pytest

from lwmspectro.config_base import ConfigBase, bounded
from lwmspectro.spectrogram import SpectrogramParams
from lwmspectro.synth import GeneratorConfig


@dataclass(frozen=True)
class Example(ConfigBase):
    rate: float = 1.0
    name: str = "a"


def test_from_dict_builds_the_config_and_to_dict_gives_it_back():
    example = Example.from_dict({"rate": 2.0})
    assert example == Example(rate=2.0) and example.to_dict() == {"rate": 2.0, "name": "a"}


@dataclass(frozen=True)
class Grown(ConfigBase):
    rate: float = 1.0
    guard: int = bounded(4, 0, 8, absent=0)


def test_a_record_lacking_a_field_added_since_reads_as_made_where_a_hand_config_takes_the_default():
    assert Grown.from_record({"rate": 2.0}) == Grown(rate=2.0, guard=0)
    assert Grown.from_dict({"rate": 2.0}) == Grown(rate=2.0, guard=4)
    assert Grown.from_record(Grown(guard=3).to_dict()) == Grown(guard=3)
    assert Example.from_record({"rate": 2.0}) == Example(rate=2.0)
    with pytest.raises(ValueError, match=r"^card.json: guard: 9 is out of range; valid: 0 to 8$"):
        Grown.from_record({"guard": 9}, "card.json")


def test_unknown_keys_are_named_with_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"^section: unknown keys \['colour', 'speed'\]; valid keys: \['name', 'rate'\]$"
    ):
        Example.from_dict({"rate": 2.0, "speed": 1, "colour": 2}, "section")


def test_the_core_configs_use_the_base(tmp_path):
    with pytest.raises(ValueError, match=r"^unknown spectrogram parameters \['n_fft_'\]; valid keys: \[.*'n_fft'"):
        SpectrogramParams.from_dict({"n_fft_": 64})
    path = tmp_path / "gen.json"
    path.write_text(json.dumps({"n_samples": 4, "sead": 1}))
    with pytest.raises(ValueError, match=rf"^{path}: unknown keys \['sead'\]; valid keys: \[.*'seed'"):
        GeneratorConfig.from_file(path)
    assert GeneratorConfig.from_dict(GeneratorConfig(n_samples=4).to_dict()).n_samples == 4
