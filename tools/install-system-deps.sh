#!/usr/bin/env bash
# Make sure GNU Radio 3.10 and the build tools are present; install them on Debian/Ubuntu as root.
set -euo pipefail
PACKAGES="gnuradio gnuradio-dev cmake g++ pybind11-dev python3-venv python3-pip python3-zmq python3-pyqt5 python3-soapysdr"
have_gnuradio() { /usr/bin/python3 -c "from gnuradio import gr" >/dev/null 2>&1 && command -v cmake >/dev/null 2>&1 \
  && /usr/bin/python3 -c "import venv, ensurepip" >/dev/null 2>&1; }
if have_gnuradio; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: $PACKAGES"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends $PACKAGES
  have_gnuradio && exit 0
fi
cat >&2 <<MSG
gr-lwmspectro needs GNU Radio 3.10 for /usr/bin/python3, CMake and python3-venv. Install them with
    sudo apt-get install $PACKAGES        (Debian 12 / Ubuntu 22.04+)
or use conda-forge:  conda install -c conda-forge gnuradio=3.10 cmake
then run make again.
MSG
exit 1
