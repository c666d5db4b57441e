"""Transport-level fakes: the real livekit/openai clients, served over their real stacks.

* :class:`InferenceGateway` -- fake LiveKit Inference gateway + OpenAI API (respx in-process
  for HTTP, a loopback aiohttp server for the STT/TTS websockets), see :mod:`.gateway`.
* :func:`aiohttp_mock` -- aioresponses fixed for aiohttp 3.14, optionally gateway-routed.
* :func:`block_network` / :class:`OfflineError` / :func:`find_offline_error` -- the offline
  guard, see :mod:`.offline`.
* :class:`Httpx2Mocker` -- respx patcher for ``httpx2`` clients (``using="httpx2"``), see
  :mod:`.respx_bridge` for why this and not ``httpx2.alias_httpx()``.

Nothing here imports pytest; the fixtures live in :mod:`pytest_agentsim.plugin.fixtures_gateway`.
"""

from __future__ import annotations

from .aiohttp_mock import AgentsimAioresponses, CompatClientResponse, aiohttp_mock
from .gateway import InferenceGateway, RecordedRequest
from .offline import NetworkGuard, OfflineError, block_network, find_offline_error, is_loopback
from .respx_bridge import MOCKER_NAME, Httpx2Mocker, PassUnmatchedRouter

__all__ = [
    "MOCKER_NAME",
    "AgentsimAioresponses",
    "CompatClientResponse",
    "Httpx2Mocker",
    "InferenceGateway",
    "NetworkGuard",
    "OfflineError",
    "PassUnmatchedRouter",
    "RecordedRequest",
    "aiohttp_mock",
    "block_network",
    "find_offline_error",
    "is_loopback",
]
