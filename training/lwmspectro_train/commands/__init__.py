"""The training package's `lwmspectro` subcommands, registered as entry points in its pyproject.

Each module has the contract of the core's commands (HELP, add_arguments, run) and imports
torch only inside run, so that `lwmspectro --help` stays instant.
"""
