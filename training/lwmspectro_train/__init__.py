"""LWM-Spectro offline package (torch): model, training stages, evaluation and ONNX export."""

import os

# On a few shared cores, OpenMP threads that spin while they wait slow torch several-fold
# (measured on 2 busy cores: 16 instead of 35-42 spectrograms/s); waiting passively avoids
# it. It must be set before torch loads its OpenMP runtime, hence here; a value the user
# set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
