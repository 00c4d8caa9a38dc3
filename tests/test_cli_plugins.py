"""One `lwmspectro` command over three packages: the core's commands never import torch, the
training package or GNU Radio; the others' commands come from their entry points; a missing or
broken one says so in one line; `--version` names every package."""

import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lwmspectro import cli

ROOT = Path(__file__).resolve().parents[1]


def installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


HAS_TRAINING = installed("lwmspectro-train")
HAS_GNURADIO = installed("gr-lwmspectro")

CORE_ONLY = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from lwmspectro import cli

    def call(argv):
        with contextlib.redirect_stdout(io.StringIO()) as out:
            try:
                code = cli.main(argv)
            except SystemExit as stop:
                code = stop.code
        return code, out.getvalue()

    cli.build_parser()
    codes = {
        "--help": call(["--help"])[0],
        "--version": call(["--version"])[0],
        "generate --help": call(["generate", "--help"])[0],
        "bench --help": call(["bench", "--help"])[0],
        "bench infer --help": call(["bench", "infer", "--help"])[0],
        "iq": call(["iq", "--protocol", "lte", "--channel", "TDL-A", "--seed", "1", "--out", sys.argv[1]])[0],
    }
    code, out = call(["classify", sys.argv[1], "--bundle", sys.argv[2], "--json", "--max-windows", "1"])
    codes["classify"] = code
    loaded = sorted(name for name in ("torch", "lwmspectro_train", "gnuradio") if name in sys.modules)
    readouts = [json.loads(line) for line in out.splitlines()]
    print(json.dumps({"codes": codes, "protocols": [r["protocol"] for r in readouts], "loaded": loaded}))
    """
)


def test_the_core_and_its_commands_import_neither_torch_nor_training_nor_gnuradio(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", CORE_ONLY, str(tmp_path / "rec"), str(ROOT / "models" / "small")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["codes"] == {
        "--help": 0,
        "--version": 0,
        "generate --help": 0,
        "bench --help": 0,
        "bench infer --help": 0,
        "iq": 0,
        "classify": 0,
    }
    assert len(result["protocols"]) == 1
    assert result["loaded"] == []


@pytest.mark.skipif(not HAS_TRAINING, reason="the training package is not installed")
def test_the_training_package_contributes_export_eval_and_the_eager_pytorch_rows():
    commands = cli.plugin_entry_points(cli.COMMAND_GROUP)
    assert {"export", "eval"} <= set(commands)
    assert commands["export"].value == "lwmspectro_train.commands.export"
    assert "eager-pytorch" in cli.plugin_entry_points("lwmspectro.bench_infer_models")


@pytest.mark.skipif(not HAS_GNURADIO, reason="GNU Radio is not installed")
def test_the_gnuradio_module_contributes_run_demo_and_the_flowgraph_benchmark():
    assert {"run", "demo"} <= set(cli.plugin_entry_points(cli.COMMAND_GROUP))
    assert "flowgraph" in cli.plugin_entry_points(cli.BENCHMARK_GROUP)
    assert importlib.metadata.version("gr-lwmspectro")


def test_help_lists_every_command_with_the_package_it_comes_from(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "300")
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    listing = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("    ")}
    assert {"bench", "classify", "generate", "gallery", "iq", "scenarios", *cli.KNOWN_PLUGIN_COMMANDS} <= set(listing)
    assert listing["export"].endswith("[lwmspectro-train]" if HAS_TRAINING else "[not installed]")
    assert listing["run"].endswith("[gr-lwmspectro]" if HAS_GNURADIO else "[not installed]")


@pytest.fixture
def nothing_installed(monkeypatch):
    """The core alone: no package contributes commands."""
    monkeypatch.setattr(cli, "plugin_entry_points", lambda group: {})


@pytest.mark.parametrize(
    "argv, prog, install",
    [
        (["run", "--source", "synthetic"], "lwmspectro run", "make build"),
        (["demo"], "lwmspectro demo", "make build"),
        (["export", "--run", "runs/small", "--out", "b"], "lwmspectro export", "pip install -e training"),
        (["eval", "--data", "d"], "lwmspectro eval", "pip install -e training"),
        (["bench", "flowgraph"], "lwmspectro bench flowgraph", "make build"),
    ],
)
def test_a_command_whose_package_is_missing_says_how_to_install_it(nothing_installed, argv, prog, install, capsys):
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"{prog}: error: not installed; ") and install in err


def test_help_marks_missing_commands(nothing_installed, capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "[not installed]" in capsys.readouterr().out


def test_a_broken_plugin_is_reported_in_one_line_and_leaves_the_others(monkeypatch, capsys):
    broken = importlib.metadata.EntryPoint(name="run", value="lwmspectro_no_such_module", group=cli.COMMAND_GROUP)
    monkeypatch.setattr(cli, "plugin_entry_points", lambda group: {"run": broken} if group == cli.COMMAND_GROUP else {})
    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (
        "lwmspectro run: error: the command from lwmspectro_no_such_module cannot be loaded (ModuleNotFoundError" in err
    )
    assert "make build" in err
    assert cli.main(["scenarios", "list"]) == 0


def test_version_names_the_core_and_each_installed_plugin_package(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"lwmspectro {importlib.metadata.version('lwmspectro')}"
    names = {line.split()[0] for line in lines}
    assert ("lwmspectro-train" in names) == HAS_TRAINING
    assert ("gr-lwmspectro" in names) == HAS_GNURADIO


@pytest.mark.parametrize(
    "argv", [["classify", "--version"], ["bench", "infer", "--version"], ["scenarios", "--version"]]
)
def test_every_command_takes_version(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 0
    assert capsys.readouterr().out.splitlines()[0] == f"lwmspectro {importlib.metadata.version('lwmspectro')}"


def test_help_documents_the_exit_statuses(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "300")
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "exit status:" in out and "usage error" in out and "-v, --verbose" in out and "--debug" in out


def _failing_command(message: str, error: type[Exception] = ValueError):
    def run(args):
        logging.getLogger("lwmspectro.commands.test").info("working on it")
        raise error(message)

    return run


@pytest.mark.parametrize(
    "error, status", [(ValueError, 1), (OSError, 1), (RuntimeError, 1), (cli.UsageError, 2), (KeyboardInterrupt, 130)]
)
def test_a_failure_is_one_line_with_a_status_by_kind(monkeypatch, capsys, error, status):
    monkeypatch.setattr("lwmspectro.commands.scenarios.run", _failing_command("it broke", error))
    assert cli.main(["scenarios", "list"]) == status
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.splitlines()[-1].startswith("lwmspectro scenarios: ")
    assert err.splitlines()[0] == "working on it"


def test_debug_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setattr("lwmspectro.commands.scenarios.run", _failing_command("it broke"))
    assert cli.main(["--debug", "scenarios", "list"]) == 1
    assert "Traceback" in capsys.readouterr().err
    assert cli.main(["scenarios", "list", "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_quiet_keeps_information_off_stderr_and_verbose_adds_debug(monkeypatch, capsys):
    def run(args):
        log = logging.getLogger("lwmspectro.commands.test")
        log.debug("detail")
        log.info("working on it")
        log.warning("careful")
        return 0

    monkeypatch.setattr("lwmspectro.commands.scenarios.run", run)
    assert cli.main(["-q", "scenarios", "list"]) == 0
    assert capsys.readouterr().err == "lwmspectro: warning: careful\n"
    assert cli.main(["-v", "scenarios", "list"]) == 0
    assert capsys.readouterr().err.splitlines() == ["detail", "working on it", "lwmspectro: warning: careful"]


def test_one_progress_flag_which_quiet_implies(monkeypatch):
    seen = []
    monkeypatch.setattr("lwmspectro.commands.generate.run", lambda args: seen.append(args.no_progress) or 0)
    argv = ["generate", "--config", "c.json", "--out", "d"]
    assert cli.main(argv) == 0 and cli.main([*argv, "--no-progress"]) == 0 and cli.main(["-q", *argv]) == 0
    assert seen == [False, True, True]


def test_a_closed_stdout_ends_quietly(monkeypatch, capsys):
    def run(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("lwmspectro.commands.scenarios.run", run)
    assert cli.main(["scenarios", "list"]) == cli.EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("value", ["-5", "-2.5", "-.5", "-1e1", "-2.5E-1"])
def test_a_negative_number_is_a_value_in_every_notation(value):
    args = cli.build_parser().parse_args(["score", "recordings", "--min-snr", value])
    assert args.min_snr == float(value)
