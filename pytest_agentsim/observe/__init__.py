"""Observe: what a conversation produced (timeline, observed events, history, reports),
read from livekit's objects by their attributes. No livekit, no pytest."""
