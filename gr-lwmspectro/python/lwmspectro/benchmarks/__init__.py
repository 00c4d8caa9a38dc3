"""The GNU Radio module's benchmarks for `lwmspectro bench` (flowgraph), registered as entry points
in the distribution metadata CMake installs beside the package (gr-lwmspectro/dist-info)."""
