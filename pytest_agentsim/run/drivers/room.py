"""The room of a fake job: connected, like the console's, without a LiveKit server.

An entrypoint that calls ``ctx.connect()`` and then uses the room (registers RPC methods
and text-stream handlers for its UI, sets attributes, waits for the caller) gets what
livekit's own console mode gives it: a local participant (identity ``agent``) whose calls
are accepted and recorded, and the simulated user as the one remote participant, so
``ctx.wait_for_participant()`` returns it at once. Nothing is ever received: no RPC
arrives, no stream opens, no participant comes or goes. A call that would need a real
room (publishing a track: audio goes through the session's own output here) fails with
an error that names it. Python only: no FFI handle is ever created.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

from livekit import rtc

__all__ = [
    "FAKE_USER_IDENTITY",
    "FakeLocalParticipant",
    "FakeRemoteParticipant",
    "FakeRoom",
    "silent_background_audio",
]

FAKE_USER_IDENTITY = "agentsim-user"
"""The simulated user's participant identity."""


class _FakeParticipant:
    """The ``rtc.Participant`` surface agents read: identity, attributes, kind, state."""

    def __init__(self, *, sid: str, identity: str, name: str = "") -> None:
        self.sid = sid
        self.identity = identity
        self.name = name
        self.metadata = ""
        self.attributes: dict[str, str] = {}
        self.kind = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
        self.kind_details: list[int] = []
        self.state = rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE
        self.track_publications: dict[str, Any] = {}
        self.joined_at = None
        self.disconnect_reason = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(identity={self.identity!r})"


class FakeRemoteParticipant(_FakeParticipant):
    """The simulated user."""


class FakeLocalParticipant(_FakeParticipant):
    """The agent: every call is accepted and recorded in :attr:`calls` (``(name, args)``)."""

    def __init__(self, room: FakeRoom, *, sid: str, identity: str) -> None:
        super().__init__(sid=sid, identity=identity)
        self._room = room
        self.rpc_methods: dict[str, Callable[..., Any]] = {}

    def _record(self, call: str, *args: Any) -> None:
        self._room.calls.append((call, args))

    # -- RPC -------------------------------------------------------------------------
    def register_rpc_method(self, method_name: str, handler: Any = None) -> Any:
        def register(fn: Any) -> Any:
            self.rpc_methods[method_name] = fn
            self._record("register_rpc_method", method_name)
            return fn

        return register(handler) if handler is not None else register

    def unregister_rpc_method(self, method: str) -> None:
        self.rpc_methods.pop(method, None)
        self._record("unregister_rpc_method", method)

    async def perform_rpc(
        self, *, destination_identity: str, method: str, payload: str, **_: Any
    ) -> str:
        # nobody answers in a simulation: the call succeeds with an empty response
        self._record("perform_rpc", destination_identity, method, payload)
        return ""

    def add_rpc_interceptor(self, interceptor: Any) -> None:
        self._record("add_rpc_interceptor")

    def remove_rpc_interceptor(self, interceptor: Any) -> None:
        self._record("remove_rpc_interceptor")

    # -- state -----------------------------------------------------------------------
    async def set_attributes(self, attributes: Mapping[str, str]) -> None:
        self.attributes.update(attributes)
        self._record("set_attributes", dict(attributes))

    async def set_metadata(self, metadata: str) -> None:
        self.metadata = metadata
        self._record("set_metadata", metadata)

    async def set_name(self, name: str) -> None:
        self.name = name
        self._record("set_name", name)

    # -- data ------------------------------------------------------------------------
    async def publish_data(self, payload: Any, **kwargs: Any) -> None:
        self._record("publish_data", payload)

    async def publish_transcription(self, transcription: Any) -> None:
        self._record("publish_transcription")

    async def send_text(self, text: str, **kwargs: Any) -> Any:
        self._record("send_text", text, kwargs.get("topic"))
        return _StreamInfo()

    async def stream_text(self, **kwargs: Any) -> _StreamWriter:
        self._record("stream_text", kwargs.get("topic"))
        return _StreamWriter()

    async def stream_bytes(self, name: str = "", **kwargs: Any) -> _StreamWriter:
        self._record("stream_bytes", name, kwargs.get("topic"))
        return _StreamWriter()

    async def send_bytes(self, data: Any, **kwargs: Any) -> Any:
        self._record("send_bytes", kwargs.get("topic"))
        return _StreamInfo()

    async def send_file(self, file_path: str, **kwargs: Any) -> Any:
        self._record("send_file", file_path)
        return _StreamInfo()

    # -- tracks ----------------------------------------------------------------------
    async def publish_track(self, track: Any, options: Any = None) -> Any:
        raise RuntimeError(
            "pytest-agentsim: room.local_participant.publish_track() is not supported in a "
            "test (there is no media server): the session's audio reaches the user through "
            "the plugin's output; a BackgroundAudioPlayer or a custom track cannot play here"
        )

    async def unpublish_track(self, track_sid: str) -> None:
        self._record("unpublish_track", track_sid)

    def set_track_subscription_permissions(self, **kwargs: Any) -> None:
        self._record("set_track_subscription_permissions")


class _StreamWriter:
    """A text/byte stream writer that writes nowhere."""

    async def write(self, data: Any) -> None:
        return None

    async def aclose(self, **kwargs: Any) -> None:
        return None


class _StreamInfo:
    stream_id = "agentsim-stream"
    id = stream_id


class FakeRoom(rtc.Room):
    """A connected ``rtc.Room`` with no server behind it (see the module docstring)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._info.name = name
        self._info.sid = "RM_agentsim"
        self._connection_state = rtc.ConnectionState.CONN_CONNECTED
        agent = FakeLocalParticipant(self, sid="PA_agentsim_agent", identity="agent")
        user = FakeRemoteParticipant(sid="PA_agentsim_user", identity=FAKE_USER_IDENTITY)
        # duck-typed: the real classes need native handles
        self._local_participant = cast(rtc.LocalParticipant, agent)
        self._remote_participants = {user.sid: cast(rtc.RemoteParticipant, user)}
        # anything awaiting the first room SID gets it (livekit rtc 1.1.8, which livekit-agents
        # 1.6.0 pins, has no _resolve_first_sid: it sets the future itself)
        if hasattr(self, "_resolve_first_sid"):
            self._resolve_first_sid(self._info.sid)
        elif not self._first_sid_future.done():
            self._first_sid_future.set_result(self._info.sid)

    @property
    def agent(self) -> FakeLocalParticipant:
        return cast(FakeLocalParticipant, self._local_participant)

    def isconnected(self) -> bool:
        return self._connection_state != rtc.ConnectionState.CONN_DISCONNECTED

    async def connect(self, url: str = "", token: str = "", options: Any = None) -> None:
        return None  # connected from the start

    async def disconnect(
        self, *, reason: rtc.DisconnectReason.ValueType = rtc.DisconnectReason.CLIENT_INITIATED
    ) -> None:
        if self._connection_state != rtc.ConnectionState.CONN_DISCONNECTED:
            self._connection_state = rtc.ConnectionState.CONN_DISCONNECTED
            self.emit("connection_state_changed", self._connection_state)
            self.emit("disconnected", reason)

    async def get_rtc_stats(self) -> Any:
        raise RuntimeError("pytest-agentsim: room.get_rtc_stats() needs a media server")

    def __del__(self) -> None:
        return None  # no native handle to release


@contextlib.contextmanager
def silent_background_audio(note: Callable[[str], object]) -> Iterator[None]:
    """``BackgroundAudioPlayer`` as livekit's console mode leaves it: started, never
    played (no track is published and no audio file is decoded, so no decoder thread
    outlives the test), every ``play()`` handle already done."""
    from livekit.agents import BackgroundAudioPlayer
    from livekit.agents.voice.background_audio import PlayHandle

    original = {name: vars(BackgroundAudioPlayer)[name] for name in ("start", "play", "aclose")}

    async def start(self: Any, *args: Any, **kwargs: Any) -> None:
        self._agentsim_silent = True
        note("a BackgroundAudioPlayer started: not played in tests (as in livekit's console)")

    def play(self: Any, audio: Any, *, loop: bool = False) -> Any:
        if not getattr(self, "_agentsim_silent", False):
            return original["play"](self, audio, loop=loop)
        handle = PlayHandle()
        handle._mark_playout_done()
        return handle

    async def aclose(self: Any) -> None:
        if not getattr(self, "_agentsim_silent", False):
            await original["aclose"](self)

    patched = {"start": start, "play": play, "aclose": aclose}
    for name, fn in patched.items():
        setattr(BackgroundAudioPlayer, name, fn)
    try:
        yield
    finally:
        for name, fn in original.items():
            setattr(BackgroundAudioPlayer, name, fn)
