"""pytest fixtures for the transport-level fake gateway (registered by the main plugin;
load alone with ``-p pytest_agentsim.plugin.fixtures_gateway`` or ``pytest_plugins = [...]``).

``inference_gateway`` starts an :class:`~pytest_agentsim.transport.InferenceGateway` for one
test: respx routes for the LLM URLs, the loopback STT/TTS websocket server,
``LIVEKIT_INFERENCE_URL`` and dummy credentials, and livekit's http context. At teardown it
fails the test if scripted answers or faults were never used, because an unused script
almost always means the agent did not do what the test author expected; mark the test
``@pytest.mark.agentsim_allow_unused`` to opt out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from ..faults import Fault

if TYPE_CHECKING:  # the engine pulls in livekit, aiohttp, respx: import it only when used
    from ..run.api import InferenceGateway

# Both fixtures must be registered (import the module as a plugin, or import both names
# into the plugin module): `inference_gateway` depends on `_agentsim_gateway_running`.
__all__ = ["ALLOW_UNUSED_MARKER", "_agentsim_gateway_running", "inference_gateway", "unused_report"]

ALLOW_UNUSED_MARKER = "agentsim_allow_unused"


def pytest_configure(config: pytest.Config) -> None:
    # registered here too, so the module works on its own under --strict-markers
    config.addinivalue_line(
        "markers",
        f"{ALLOW_UNUSED_MARKER}: do not fail the test when scripted model answers or faults "
        "were never used.",
    )


def _describe(item: object) -> str:
    if isinstance(item, Fault):
        return f"fault {item.describe()}"
    return repr(item)


def unused_report(gateway: InferenceGateway) -> str | None:
    """The teardown message for scripted items never served, or None."""
    unused = gateway.unused()
    if not unused:
        return None
    lines = ["inference_gateway: scripted answers were never used:"]
    for resource, items in unused.items():
        lines.extend(f"  {resource}: {_describe(item)}" for item in items)
    lines.append(
        "The agent made fewer model calls than scripted. Remove the extra answers, or mark "
        f"the test @pytest.mark.{ALLOW_UNUSED_MARKER}."
    )
    return "\n".join(lines)


@pytest_asyncio.fixture
async def _agentsim_gateway_running() -> AsyncIterator[InferenceGateway]:
    from ..run.api import InferenceGateway

    async with InferenceGateway() as gateway:
        yield gateway


@pytest.fixture
def inference_gateway(
    request: pytest.FixtureRequest, _agentsim_gateway_running: InferenceGateway
) -> Iterator[InferenceGateway]:
    """A started fake LiveKit Inference gateway (and OpenAI API) for this test."""
    # Two fixtures on purpose: the unused-script check fails in *this* (sync) teardown.
    # Failing inside the async fixture's teardown would make pytest-asyncio skip restoring
    # the context variables its setup exported (livekit's http session among them), and
    # they would leak, bound to a closed event loop, into later tests.
    gateway = _agentsim_gateway_running
    yield gateway
    if request.node.get_closest_marker(ALLOW_UNUSED_MARKER) is not None:
        return
    message = unused_report(gateway)
    if message is not None:
        pytest.fail(message, pytrace=False)
