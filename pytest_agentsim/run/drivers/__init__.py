"""Drivers: how each mode gets a turn to the agent and its events back (in-process session,
entrypoint job, child process over the session protocol)."""
