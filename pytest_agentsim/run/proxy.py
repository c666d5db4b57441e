"""The loopback endpoint every model client of a recorded/replayed run talks to.

``http://127.0.0.1:PORT/<role>/v1`` for each role (the agent's LiveKit Inference or OpenAI
client, the simulated user, the judge): recording, :class:`ModelProxy` forwards each
request to the role's real endpoint (:func:`upstreams`) and writes the exchange to the
cassette; replaying, it answers from the cassette and never opens an outbound connection.
With both (record mode ``new_episodes``) it replays what the cassette holds and records
the rest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from livekit.agents.inference._utils import create_access_token

from ..env import DUMMY_CREDENTIALS, loopback_models
from .cassette import Cassette, CassetteMiss, Interaction, parse_body, parse_sse, redact_text

__all__ = [
    "DEFAULT_INFERENCE_URL",
    "OPENAI_URL",
    "ModelProxy",
    "auth_header",
    "is_inference_model",
    "upstreams",
]

OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_INFERENCE_URL = "https://agent-gateway.livekit.cloud/v1"


def is_inference_model(model: str) -> bool:
    """``provider/model`` names are LiveKit Inference models; others are OpenAI's."""
    return "/" in model


def auth_header(model: str) -> str:
    """``Authorization`` for a model request: a LiveKit Inference JWT or the OpenAI key."""
    if is_inference_model(model):
        key = os.environ.get("LIVEKIT_INFERENCE_API_KEY") or os.environ.get(
            "LIVEKIT_API_KEY", DUMMY_CREDENTIALS["LIVEKIT_API_KEY"]
        )
        secret = os.environ.get("LIVEKIT_INFERENCE_API_SECRET") or os.environ.get(
            "LIVEKIT_API_SECRET", DUMMY_CREDENTIALS["LIVEKIT_API_SECRET"]
        )
        return f"Bearer {create_access_token(key, secret)}"
    return f"Bearer {os.environ.get('OPENAI_API_KEY') or DUMMY_CREDENTIALS['OPENAI_API_KEY']}"


def upstreams(*, model_base_url: str | None, user_model: str, judge_model: str) -> dict[str, str]:
    """role -> the real base URL a recording forwards to."""
    inference = os.environ.get("LIVEKIT_INFERENCE_URL") or DEFAULT_INFERENCE_URL
    openai = os.environ.get("OPENAI_BASE_URL") or OPENAI_URL
    if model_base_url:
        inference = openai = model_base_url
    return {
        "agent": inference,
        "agent-openai": openai,
        "user": inference if is_inference_model(user_model) else openai,
        "judge": inference if is_inference_model(judge_model) else openai,
    }


def _agent_role(body: Any) -> str:
    """The role of an agent process's request: its model's name says which client sent it
    (the same roles as in-process, so one cassette serves every mode)."""
    model = body.get("model") if isinstance(body, dict) else None
    return "agent" if isinstance(model, str) and is_inference_model(model) else "agent-openai"


class ModelProxy:
    """Loopback endpoint for every model client of a run: replays and/or records, as
    ``cassette.replay`` / ``cassette.record`` say (:func:`~.recording.open_cassette`).

    ``upstreams`` maps a role to the base URL requests are forwarded to when recording
    (``https://api.openai.com/v1``...). Clients use ``proxy.base_url(role)``.
    """

    def __init__(self, cassette: Cassette, *, upstreams: Mapping[str, str], port: int = 0) -> None:
        self.cassette = cassette
        self.upstreams = dict(upstreams)
        self.misses: list[str] = []
        self.errors: list[str] = []
        self._runner: Any = None
        self._client: Any = None
        self._port = port

    def base_url(self, role: str) -> str:
        return f"http://127.0.0.1:{self._port}/{role}/v1"

    def child_env(self) -> dict[str, str]:
        """Environment for an agent in another process. Its LiveKit Inference and OpenAI
        clients share the URL a fake gateway would have (``/v1``: a warm server imported
        the agent with it); the model each request names tells the two apart."""
        return loopback_models(f"http://127.0.0.1:{self._port}/v1")

    async def start(self) -> ModelProxy:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{role}/v1/{tail:.*}", self._handle)
        app.router.add_route("*", "/v1/{tail:.*}", self._handle)  # an agent process
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self._port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self._port = int(sockets[0].getsockname()[1])
        self._runner = runner
        return self

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: Any) -> Any:
        # one request per connection: the model clients of a run are not always closed
        # (a session does not close its LLM), and a kept-alive socket to a proxy that is
        # gone would be reported unclosed when collected
        response = await self._answer(request)
        response.force_close()
        return response

    async def _answer(self, request: Any) -> Any:
        tail = request.match_info["tail"]
        if request.method == "GET" and tail.startswith("models"):
            # the clients' prewarm: never recorded
            return web.json_response({"object": "list", "data": []})
        raw = await request.read()
        body = parse_body(raw)
        role = request.match_info.get("role") or _agent_role(body)
        try:
            item = self.cassette.lookup(role, request.method, f"/{tail}", body)
        except CassetteMiss as e:
            self.misses.append(str(e))
            return web.json_response(
                {"error": {"message": str(e), "type": "agentsim_cassette_miss"}}, status=400
            )
        if item is not None:
            return web.Response(
                status=item.status, body=item.render(), content_type=item.content_type
            )
        return await self._forward(request, role, tail, raw, body)

    async def _forward(self, request: Any, role: str, tail: str, raw: bytes, body: Any) -> Any:
        import aiohttp

        base = self.upstreams.get(role)
        if base is None:
            return web.json_response({"error": {"message": f"no upstream for {role}"}}, status=404)
        url = base.rstrip("/") + "/" + tail
        if request.query_string:
            url += "?" + request.query_string
        skip = {"host", "content-length", "accept-encoding", "connection", "transfer-encoding"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))
        # appended now, filled when the answer is complete: the cassette keeps request order
        item = Interaction(
            role=role,
            method=request.method,
            url=url,
            body=body,
            status=0,
            content_type="",
        )
        self.cassette.add(item)
        out: Any = None
        try:
            async with self._client.request(request.method, url, data=raw, headers=headers) as resp:
                item.status = resp.status
                item.content_type = ctype = resp.headers.get(
                    "content-type", "application/json"
                ).split(";")[0]
                if ctype != "text/event-stream":
                    payload = await resp.read()
                    item.response_body = parse_body(payload)
                    return web.Response(status=resp.status, body=payload, content_type=ctype)
                # streamed: relay each chunk as it comes (clients time out on slow reads)
                out = web.StreamResponse(status=resp.status, headers={"Content-Type": ctype})
                out.force_close()
                await out.prepare(request)
                chunks = []
                async for chunk in resp.content.iter_any():
                    chunks.append(chunk)
                    await out.write(chunk)
                item.events = parse_sse(b"".join(chunks))
                await out.write_eof()
                return out
        except Exception as e:
            self.cassette.discard(item)
            # the URL (and an error quoting it) may carry user:password@ or ?key=
            error = redact_text(f"{role}: {request.method} {url}: {type(e).__name__}: {e}")
            self.errors.append(error)
            self.cassette.failed = error  # a recording with a hole is not saved
            if out is not None and out.prepared:
                return out  # the stream broke off mid-way: so does the client's
            message = redact_text(f"agentsim record: {e}")
            return web.json_response(
                {"error": {"message": message, "type": "agentsim_upstream"}}, status=502
            )
