"""Environment variables the plugin sets for a while, and the dummy credentials it fills.

LiveKit's and OpenAI's clients refuse to construct without credentials, and the inference
clients sign a JWT with the secret. While the fakes or the fake gateway serve the models,
any values do, and none is ever sent anywhere: :data:`DUMMY_CREDENTIALS` fill the ones the
user has not set. The secret is 40 bytes because PyJWT warns (an error under
``filterwarnings = error``) below 32. Nothing here imports livekit or pytest.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

__all__ = ["DUMMY_CREDENTIALS", "ScopedEnv", "dummy_credentials", "loopback_models", "scenario_env"]

DUMMY_CREDENTIALS: Mapping[str, str] = {
    "LIVEKIT_API_KEY": "agentsim-dummy-key",
    "LIVEKIT_API_SECRET": "agentsim-dummy-secret-0123456789abcdefghij",
    "OPENAI_API_KEY": "sk-agentsim-dummy",
}


def loopback_models(base_url: str) -> dict[str, str]:
    """Environment for an agent in another process whose LiveKit Inference and OpenAI
    clients talk to ``base_url`` (a loopback server), with credentials where none are set."""
    env = {k: v for k, v in DUMMY_CREDENTIALS.items() if not os.environ.get(k)}
    env["LIVEKIT_INFERENCE_URL"] = env["OPENAI_BASE_URL"] = base_url
    return env


class ScopedEnv:
    """Set environment variables now, put every one back as it was on :meth:`restore`."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def set(self, key: str, value: str) -> None:
        if key not in self._saved:
            self._saved[key] = os.environ.get(key)
        os.environ[key] = value

    def unset(self, key: str) -> None:
        if key not in self._saved:
            self._saved[key] = os.environ.get(key)
        os.environ.pop(key, None)

    def default(self, key: str, value: str) -> None:
        """Set ``key`` only when it is unset or empty."""
        if not os.environ.get(key):
            self.set(key, value)

    def defaults(self, values: Mapping[str, str]) -> None:
        for key, value in values.items():
            self.default(key, value)

    def restore(self) -> None:
        for key, old in self._saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        self._saved.clear()


@contextlib.contextmanager
def dummy_credentials() -> Iterator[None]:
    """The dummy credentials where unset, for the duration of the block."""
    env = ScopedEnv()
    env.defaults(DUMMY_CREDENTIALS)
    try:
        yield
    finally:
        env.restore()


@contextlib.contextmanager
def scenario_env(values: Mapping[str, str | None] | None) -> Iterator[None]:
    """A scenario's ``agentsim: {env: ...}`` for the duration of the block (None unsets)."""
    env = ScopedEnv()
    for key, value in (values or {}).items():
        if value is None:
            env.unset(key)
        else:
            env.set(key, value)
    try:
        yield
    finally:
        env.restore()
