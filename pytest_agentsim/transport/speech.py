"""The STT/TTS websockets of the fake gateway: what ``inference.STT``/``inference.TTS``
talk to, with scripted transcripts, synthesized audio and faults (handshake or in-band).

TTS: ``session.create``, ``input_transcript``, ``session.flush`` in; ``output_audio``
(base64 pcm16) then ``done`` out, or ``{"type": "error", ...}``. STT: ``session.create``,
audio, ``session.finalize`` in; ``interim_transcript``, ``final_transcript``,
``session.finalized`` out. See :mod:`.gateway` for how faults map onto each transport.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import struct
from collections.abc import Callable
from typing import Any, Literal

from aiohttp import WSMsgType, web

from ..answers import STTAnswer, TTSAnswer
from ..faults import CallScript, Fault
from . import wire
from .scripted import NoAnswer, draw, handshake_fault

__all__ = ["SpeechSockets", "abort", "error_frame", "hold"]


_TONE_CACHE: dict[int, bytes] = {}


def _tone_10ms(sample_rate: int) -> bytes:
    """10 ms of a quiet 220 Hz tone, pcm_s16le mono (cached per rate): audible enough for
    an energy VAD, cheap to repeat."""
    cached = _TONE_CACHE.get(sample_rate)
    if cached is None:
        n = sample_rate // 100
        samples = (int(3000 * math.sin(2 * math.pi * 220 * i / sample_rate)) for i in range(n))
        cached = struct.pack(f"<{n}h", *samples)
        _TONE_CACHE[sample_rate] = cached
    return cached


def _pcm(seconds: float, sample_rate: int) -> bytes:
    return _tone_10ms(sample_rate) * max(1, round(seconds * 100))


def _rms(pcm: bytes) -> float:
    n = len(pcm) // 2
    if n == 0:
        return 0.0
    samples = struct.unpack(f"<{n}h", pcm[: n * 2])
    return math.sqrt(sum(s * s for s in samples) / n)


async def hold(request: web.BaseRequest, closing: asyncio.Event, limit: float = 120.0) -> None:
    """A scripted ``timeout``: answer nothing until the client gives up (closes the
    connection) or the gateway shuts down."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not closing.is_set() and loop.time() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(closing.wait(), 0.05)


def abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def error_frame(fault: Fault, session_id: str) -> str:
    frame: dict[str, Any] = {
        "type": "error",
        "session_id": session_id,
        "code": fault.status if fault.status is not None else 400,
        "message": fault.message,
    }
    if fault.body:
        frame["error"] = dict(fault.body)
    return json.dumps(frame)


class SpeechSockets:
    """The websocket half of the gateway (a base of :class:`~.gateway.InferenceGateway`).

    It reads the gateway's scripts and records its requests through the attributes below.
    """

    tts: CallScript[TTSAnswer]
    stt: CallScript[STTAnswer]
    synthesized: list[str]
    transcribed: list[str]
    unscripted: list[str]
    _closing: asyncio.Event
    _sockets: set[web.WebSocketResponse]
    _drop_retry: dict[str, float]
    _ws_count: int
    _tts_seconds_per_char: float
    tts_ttfb: float = 0.0  # seconds before each synthesis's first audio (SPEC §10)
    _stt_endpoint_silence: float
    record_request: Callable[..., Any]

    async def _handshake(
        self, request: web.Request, resource: Literal["stt", "tts"]
    ) -> web.StreamResponse | None:
        """Record the upgrade request; answer it when a handshake fault is next (None:
        go ahead and upgrade)."""
        self._record_ws(request, resource)
        loop = asyncio.get_running_loop()
        if self._drop_retry.pop(resource, 0.0) > loop.time():
            # aiohttp retries an idempotent request (the upgrade GET) once when the server
            # drops it; a scripted connection_error is one failed *connection attempt*, as a
            # refused connection would be, so its immediate retry is dropped too.
            abort(request)
            return web.Response(status=502)
        script: CallScript[Any] = self.tts if resource == "tts" else self.stt
        fault = script.peek()
        if not (isinstance(fault, Fault) and handshake_fault(fault)):
            return None
        script.next()
        if fault.kind == "timeout":
            await hold(request, self._closing)
            return web.Response(status=504)
        if fault.kind == "connection_error":
            self._drop_retry[resource] = loop.time() + 2.0
            abort(request)
            return web.Response(status=502)
        reply = wire.fault_reply({}, fault, 0)
        return web.Response(status=reply.status, body=reply.body, headers=dict(reply.headers))

    def _record_ws(self, request: web.Request, resource: Literal["stt", "tts"]) -> None:
        self.record_request(
            request.method,
            str(request.url).replace("http", "ws", 1),
            list(request.headers.items()),
            b"",
            "ws",
            resource,
        )

    async def _open_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        return ws

    # -- TTS ---------------------------------------------------------------------------
    async def _ws_tts(self, request: web.Request) -> web.StreamResponse:
        refused = await self._handshake(request, "tts")
        if refused is not None:
            return refused
        ws = await self._open_ws(request)
        self._ws_count += 1
        session_id = request.headers.get("X-LiveKit-Session-ID") or f"agentsim_tts_{self._ws_count}"
        sample_rate = 24000
        pending: list[str] = []
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                kind = data.get("type")
                if kind == "session.create":
                    sample_rate = int(data.get("sample_rate") or sample_rate)
                    await ws.send_str(
                        json.dumps({"type": "session.created", "session_id": session_id})
                    )
                elif kind == "input_transcript":
                    pending.append(str(data.get("transcript", "")))
                elif kind == "session.flush":
                    text = "".join(pending).strip()
                    pending.clear()
                    if not text:  # empty input: the client still waits for `done`
                        await ws.send_str(json.dumps({"type": "done", "session_id": session_id}))
                        continue
                    if not await self._synthesize(request, ws, session_id, text, sample_rate):
                        break
                elif kind == "session.close":
                    break
        finally:
            self._sockets.discard(ws)
        return ws

    async def _synthesize(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        session_id: str,
        text: str,
        sample_rate: int,
    ) -> bool:
        """Answer one synthesis; False when the connection was dropped."""
        self.synthesized.append(text)
        answer = draw(self.tts)
        ttfb = answer.ttfb if isinstance(answer, TTSAnswer) and answer.ttfb is not None else None
        if ttfb or self.tts_ttfb:
            await asyncio.sleep(ttfb if ttfb is not None else self.tts_ttfb)
        fault = answer if isinstance(answer, Fault) else None
        if fault is not None and fault.kind == "timeout":
            return True  # say nothing: the client's receive timeout fires
        if fault is not None and fault.kind == "connection_error":
            abort(request)
            return False
        if fault is not None and fault.kind != "disconnect_mid_stream":
            await ws.send_str(error_frame(fault, session_id))
            return True
        duration = self._tts_seconds_per_char * len(text)
        if isinstance(answer, TTSAnswer) and answer.duration is not None:
            duration = answer.duration
        pcm = _pcm(max(duration, 0.01), sample_rate)
        step = sample_rate // 10 * 2  # 100 ms per output_audio message
        frames = [pcm[i : i + step] for i in range(0, len(pcm), step)]
        if fault is not None:  # disconnect_mid_stream
            frames = frames[: fault.after_chunks]
        for frame in frames:
            await ws.send_str(
                json.dumps(
                    {
                        "type": "output_audio",
                        "session_id": session_id,
                        "audio": base64.b64encode(frame).decode(),
                    }
                )
            )
        if fault is not None:
            abort(request)
            return False
        await ws.send_str(json.dumps({"type": "done", "session_id": session_id}))
        return True

    # -- STT ---------------------------------------------------------------------------
    async def _ws_stt(self, request: web.Request) -> web.StreamResponse:
        refused = await self._handshake(request, "stt")
        if refused is not None:
            return refused
        ws = await self._open_ws(request)
        self._ws_count += 1
        session_id = request.headers.get("X-LiveKit-Session-ID") or f"agentsim_stt_{self._ws_count}"
        state = _Utterances(self, ws, request, session_id, self._stt_endpoint_silence)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    if not await state.audio(msg.data):
                        break
                    continue
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                kind = data.get("type")
                if kind == "session.create":
                    settings = data.get("settings") or {}
                    state.sample_rate = int(settings.get("sample_rate") or state.sample_rate)
                    await ws.send_str(
                        json.dumps({"type": "session.created", "session_id": session_id})
                    )
                elif kind == "input_audio":
                    if not await state.audio(base64.b64decode(data.get("audio", ""))):
                        break
                elif kind == "session.finalize":
                    if not await state.end_utterance():
                        break
                    await ws.send_str(
                        json.dumps({"type": "session.finalized", "session_id": session_id})
                    )
                elif kind == "session.close":
                    await ws.send_str(
                        json.dumps({"type": "session.closed", "session_id": session_id})
                    )
                    break
        finally:
            self._sockets.discard(ws)
        return ws


class _Utterances:
    """Server-side endpointing for the fake STT: an utterance starts at the first voiced
    audio (RMS above a quiet threshold) and ends after ``silence`` seconds of quiet audio
    or at ``session.finalize``. The scripted answer is drawn at onset (so a fault hits the
    utterance it belongs to), an interim transcript follows, the final one at the end."""

    VOICED_RMS = 300.0

    def __init__(
        self,
        gateway: SpeechSockets,
        ws: web.WebSocketResponse,
        request: web.Request,
        session_id: str,
        silence: float,
    ) -> None:
        self.gateway = gateway
        self.ws = ws
        self.request = request
        self.session_id = session_id
        self.silence = silence
        self.sample_rate = 16000
        self.clock = 0.0  # seconds of audio received
        self.start: float | None = None
        self.quiet = 0.0
        self.answer: STTAnswer | Fault | NoAnswer | None = None

    async def audio(self, pcm: bytes) -> bool:
        seconds = len(pcm) / 2 / self.sample_rate
        voiced = _rms(pcm) > self.VOICED_RMS
        at = self.clock
        self.clock += seconds
        if voiced:
            self.quiet = 0.0
            if self.start is None:
                return await self._begin(at)
            return True
        if self.start is not None:
            self.quiet += seconds
            if self.quiet >= self.silence:
                return await self.end_utterance()
        return True

    async def _begin(self, at: float) -> bool:
        self.start = at
        self.answer = answer = draw(self.gateway.stt)
        if isinstance(answer, Fault):
            return await self._fault(answer)
        if isinstance(answer, STTAnswer):
            words = answer.text.split()
            interim = " ".join(words[: max(1, len(words) // 2)])
            await self._send("interim_transcript", answer, interim, at, 0.0)
        return True

    async def end_utterance(self) -> bool:
        start, answer = self.start, self.answer
        self.start, self.answer, self.quiet = None, None, 0.0
        if start is None or answer is None:
            return True
        if isinstance(answer, NoAnswer):
            self.gateway.unscripted.append(f"stt call {self.gateway.stt.calls}")
            return True
        if isinstance(answer, Fault):
            return True  # already served at onset
        self.gateway.transcribed.append(answer.text)
        await self._send("final_transcript", answer, answer.text, start, self.clock - start)
        return True

    async def _fault(self, fault: Fault) -> bool:
        if fault.kind == "timeout":
            return True  # the transcript simply never comes
        if fault.kind == "connection_error":
            abort(self.request)
            return False
        if fault.kind == "disconnect_mid_stream":
            abort(self.request)
            return False
        await self.ws.send_str(error_frame(fault, self.session_id))
        return True

    async def _send(
        self, kind: str, answer: STTAnswer, text: str, start: float, duration: float
    ) -> None:
        words = text.split()
        step = duration / len(words) if words and duration > 0 else 0.0
        await self.ws.send_str(
            json.dumps(
                {
                    "type": kind,
                    "session_id": self.session_id,
                    "transcript": text,
                    "language": answer.language,
                    "confidence": answer.confidence,
                    "start": start,
                    "duration": duration,
                    "words": [
                        {
                            "word": w,
                            "start": start + i * step,
                            "end": start + (i + 1) * step,
                            "confidence": answer.confidence,
                        }
                        for i, w in enumerate(words)
                    ],
                }
            )
        )
