# gr-lwmspectro: `make demo` runs the receiver on synthetic signals, `make test` runs the suite.
# Both set up everything they need: system packages (as root, on Debian), the venv, the build.

VENV    := .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
STAMP   := $(VENV)/.installed
# Every Python dependency is declared in these two files (python[dev] adds pytest, ruff, mypy and ray).
REQS    := python/pyproject.toml training/pyproject.toml

.PHONY: all setup system build lint typecheck test demo gallery scenarios foreign clean

all: setup

system:
	@tools/install-system-deps.sh

$(STAMP): $(REQS)
	@tools/install-system-deps.sh
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PIP) install -q --disable-pip-version-check -e 'python[dev]' -e training
	@touch $(STAMP)

setup: $(STAMP)

# The GNU Radio module (blocks, GRC definitions, and the distribution metadata through which it
# adds `lwmspectro run`, `demo` and `bench flowgraph`), installed into the venv so that
# `from gnuradio import lwmspectro` works there and GRC finds the blocks (docs/gnuradio.md).
build: setup
	cmake -S . -B build -DCMAKE_INSTALL_PREFIX=$(CURDIR)/$(VENV) -DCMAKE_INSTALL_MESSAGE=LAZY \
	  -DPYTHON_EXECUTABLE=$(CURDIR)/$(PY) -DGR_PYTHON_DIR=$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))') >/dev/null
	cmake --build build
	cmake --install build

# Lint, format and the core's types (ruff and mypy, configured in the root pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

typecheck: setup
	$(VENV)/bin/mypy

test: lint build
	$(PY) -m pytest -q tests

gallery: setup
	$(VENV)/bin/lwmspectro gallery --out out/gallery

demo: build
	$(VENV)/bin/lwmspectro demo

# Ray-trace the bundled scenes again (sionna-rt needs numpy 2, so it gets a venv of its own, and
# Debian's LLVM 19 for its CPU backend).
scenarios: setup
	@test -e /usr/lib/x86_64-linux-gnu/libLLVM.so.19.1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -q --no-install-recommends libllvm19; } \
	  || { echo "ray tracing runs on LLVM 19 (Dr.Jit's CPU backend): sudo apt-get install libllvm19" >&2; exit 1; }
	test -x .venv-rt/bin/python || /usr/bin/python3 -m venv .venv-rt
	.venv-rt/bin/pip install -q -r tools/rt/requirements.txt
	$(VENV)/bin/lwmspectro scenarios build

# Labelled recordings made by another toolkit (Sionna's 5G NR PUSCH chain, an 802.11-like OFDM
# modem, noise and CW) in a venv of their own (Sionna needs numpy 2, and its newer Sionna RT must
# not replace the one the scenarios are traced with), then scored by the shipped model window by
# window and tracked (docs/foreign-recordings.md).
foreign: setup
	test -x .venv-sionna/bin/python || /usr/bin/python3 -m venv .venv-sionna
	.venv-sionna/bin/pip install -q -r tools/foreign/requirements.txt
	.venv-sionna/bin/python tools/foreign/sionna_recordings.py --out data/foreign-sionna
	$(VENV)/bin/lwmspectro score data/foreign-sionna --track 1

clean:
	rm -rf build out
