"""The GNU Radio module's `lwmspectro` subcommands (run, demo), registered as entry points in
the distribution metadata CMake installs beside the package (gr-lwmspectro/dist-info)."""
