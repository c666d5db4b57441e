"""Load: scenario files decoded as ``lk agent simulate`` decodes them, into the scenario
model (plain data). No livekit, no pytest."""
