#!/usr/bin/env bash
# Make sure GNU Radio 3.10 and the build tools are present; install them on Debian/Ubuntu as root.
set -euo pipefail
# What gnuradio-companion imports before it opens a window.
GRC_IMPORTS="import gi; gi.require_version('Gtk', '3.0'); gi.require_version('PangoCairo', '1.0'); \
gi.require_foreign('cairo', 'Context'); from gi.repository import Gtk; import gnuradio.grc.main; from PyQt5 import QtSvg"
# gnuradio does not pull in the Gtk 3 stack that GNU Radio Companion starts with (gir1.2-gtk-3.0, python3-gi-cairo),
# nor PyQt5's QtSvg, without which matplotlib finds no Qt binding and qtgui warns at every start.
PACKAGES="gnuradio gnuradio-dev cmake g++ pybind11-dev python3-venv python3-pip python3-zmq python3-pyqt5 python3-soapysdr gir1.2-gtk-3.0 python3-gi-cairo python3-pyqt5.qtsvg"
have_gnuradio() { /usr/bin/python3 -c "from gnuradio import gr" >/dev/null 2>&1 && command -v cmake >/dev/null 2>&1 \
  && /usr/bin/python3 -c "import venv, ensurepip" >/dev/null 2>&1 \
  && /usr/bin/python3 -c "$GRC_IMPORTS" >/dev/null 2>&1; }
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
