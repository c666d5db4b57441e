"""Run: the engine. Targets, the harness, the one turn player and its checks, a driver per
mode, simulated scenarios and cassettes. Imports livekit; never pytest. Its entry points for
the plugin are in :mod:`pytest_agentsim.run.api`."""
