"""pytest-agentsim: LiveKit Agents scenarios as offline, deterministic pytest tests."""
