"""LWM-Spectro core: spectrogram G, synthetic I/Q, SigMF I/O, bundle runtime and CLI.

Nothing here imports torch or GNU Radio at module level.
"""

__version__ = "0.1.0"
