"""`lwmspectro generate --ray`: shards made as Ray tasks are the bytes one process makes."""

import pytest

from lwmspectro import cli
from lwmspectro.dataset_generation import generate_dataset
from lwmspectro.synth import GeneratorConfig

ray = pytest.importorskip("ray")

CONFIG = GeneratorConfig(
    n_samples=12,
    shard_size=4,
    seed=11,
    channel={"TDL-A": 1.0, "TDL-D": 1.0},
    views=["wideband", "cp_profile", "ofdm_aligned_wifi"],
    capture={"probability": 0.75, "source_rates_hz": [5e6, 20e6, 30.72e6, 40e6]},
)


@pytest.fixture
def no_cluster_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def files(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_ray_tasks_write_the_bytes_one_process_writes(tmp_path, no_cluster_address):
    generate_dataset(CONFIG, tmp_path / "serial", progress=False)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        manifest = generate_dataset(CONFIG, tmp_path / "ray", use_ray=True, progress=False)
        assert ray.is_initialized(), "an instance the caller started is left running"
    finally:
        ray.shutdown()
    assert manifest["complete"] and manifest["count"] == 12
    serial, on_ray = files(tmp_path / "serial"), files(tmp_path / "ray")
    assert len(serial) == 1 + 3 * 5 and serial.keys() == on_ray.keys()
    assert [name for name in serial if serial[name] != on_ray[name]] == []


class Stop(Exception):
    pass


@pytest.mark.parametrize("address", ["ray://head.example:10001", None])
def test_ray_joins_the_cluster_at_ray_address_or_starts_its_own(tmp_path, monkeypatch, address):
    calls = []

    def init(**kwargs):
        calls.append(kwargs)
        raise Stop

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    if address:
        monkeypatch.setenv("RAY_ADDRESS", address)
    else:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(Stop):
        generate_dataset(GeneratorConfig(n_samples=1), tmp_path, use_ray=True, progress=False)
    assert calls == [{"address": address} if address else {"address": None, "include_dashboard": False}]


def test_generate_help_says_where_ray_runs(capsys):
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "RAY_ADDRESS" in text and "local Ray instance" in text
