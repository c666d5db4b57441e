"""Fixtures: ``fake_llm``, ``fake_tts``, ``fake_stt``, the ``agentsim`` harness,
``agentsim_scenario`` and ``agentsim_judge``.

The engine (which imports livekit) is loaded inside the fixtures, never at module import,
so loading the plugin stays free for runs that do not use it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from ..errors import ScenarioError
from ..load.loader import load_scenario_file
from ..load.model import Scenario
from .cassettes import missing_cassette
from .collect import network_report, recorded_judge
from .settings import SETTINGS_KEY

if TYPE_CHECKING:
    from ..run.api import AgentSim, FakeLLM, FakeSTT, FakeTTS, IntentJudge

__all__ = ["agentsim", "agentsim_judge", "agentsim_scenario", "fake_llm", "fake_stt", "fake_tts"]


def _check_unused(request: pytest.FixtureRequest, name: str, fake: Any) -> None:
    __tracebackhide__ = True
    if request.node.get_closest_marker("agentsim_allow_unused") is not None:
        return
    unscripted = list(getattr(fake, "errors", ()))
    if unscripted:
        listing = "\n".join(f"  - {e}" for e in unscripted)
        pytest.fail(
            f"{name}: the agent made model calls nothing was scripted for:\n{listing}",
            pytrace=False,
        )
    leftovers = fake.unused()
    if leftovers:
        listing = "\n".join(f"  - {x!r}" for x in leftovers)
        pytest.fail(
            f"{name}: {len(leftovers)} scripted answer(s) were never used:\n{listing}\n"
            "(remove them, or mark the test @pytest.mark.agentsim_allow_unused)",
            pytrace=False,
        )


@pytest.fixture
def fake_llm(request: pytest.FixtureRequest) -> Iterator[FakeLLM]:
    """A scripted fake LLM; answers not used by the end of the test fail it."""
    from ..run.api import FakeLLM

    fake = FakeLLM()
    yield fake
    _check_unused(request, "fake_llm", fake)


@pytest.fixture
def fake_tts(request: pytest.FixtureRequest) -> Iterator[FakeTTS]:
    """A fake TTS producing deterministic audio sized to the text."""
    from ..run.api import FakeTTS

    fake = FakeTTS()
    yield fake
    _check_unused(request, "fake_tts", fake)


@pytest.fixture
def fake_stt(request: pytest.FixtureRequest) -> Iterator[FakeSTT]:
    """A fake STT returning scripted transcripts."""
    from ..run.api import FakeSTT

    fake = FakeSTT()
    yield fake
    _check_unused(request, "fake_stt", fake)


@pytest_asyncio.fixture
async def agentsim(
    request: pytest.FixtureRequest,
    fake_llm: FakeLLM,
    fake_tts: FakeTTS,
    fake_stt: FakeSTT,
) -> AsyncIterator[AgentSim]:
    """The harness: ``await agentsim.start(agent)``, ``await agentsim.run("hi")``, then
    assert on ``agentsim.spoken``, ``agentsim.timeline``, ``assert_spoken_before_close``…

    Retry backoff costs no wall time (``--agentsim-real-timing`` restores it).
    """
    from ..run.api import AgentSim, block_network, no_backoff

    settings = request.config.stash[SETTINGS_KEY]
    sim = AgentSim(llm=fake_llm, tts=fake_tts, stt=fake_stt, timeout=settings.timeout)
    with contextlib.ExitStack() as stack:
        if not settings.real_timing:
            stack.enter_context(no_backoff())
        guard = None if settings.allow_network else stack.enter_context(block_network())
        yield sim
        await sim.aclose()
    if guard is not None and guard.blocked:
        pytest.fail(network_report(guard.blocked), pytrace=False)


@pytest.fixture
def agentsim_scenario(request: pytest.FixtureRequest) -> Scenario:
    """The scenario named by ``@pytest.mark.scenario("file.yaml", label=...)``."""
    marker = request.node.get_closest_marker("scenario")
    if marker is None or not marker.args:
        raise pytest.UsageError(
            "agentsim_scenario needs @pytest.mark.scenario('scenarios.yaml', label='...')"
        )
    path = Path(str(marker.args[0]))
    if not path.is_absolute():
        path = Path(request.node.path).parent / path
    label = marker.kwargs.get("label")
    try:
        loaded = load_scenario_file(path)
        if label is None:
            if len(loaded.scenarios) != 1:
                raise ScenarioError(
                    "the file has several scenarios",
                    path=path,
                    fix="pass label='...' to the scenario marker",
                )
            return loaded.scenarios[0]
        return loaded.by_label(str(label))
    except ScenarioError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def agentsim_judge(request: pytest.FixtureRequest) -> Iterator[IntentJudge]:
    """The LLM judge for intent checks in Python tests (``assert_intent(text, intent)``),
    replayed from ``__cassettes__/<test module>/<test name>.yaml`` beside the test file,
    written in the record modes that record (``--agentsim-record-mode``); a test without
    its cassette is skipped (or failed: ``--agentsim-missing-cassette=fail``) with the
    command that records it."""
    from ..run.api import cassette_path

    settings = request.config.stash[SETTINGS_KEY]
    node = request.node
    path = cassette_path(Path(node.path), node.name)
    rerecord = f'pytest --agentsim-record "{node.nodeid}"'
    missing_cassette(
        settings,
        path,
        f"agentsim_judge has no cassette for this test ({path.name}): record the "
        f"judge's verdicts with `{rerecord}`",
    )
    with recorded_judge(settings, node, path, node.name, rerecord) as judge:
        yield judge
