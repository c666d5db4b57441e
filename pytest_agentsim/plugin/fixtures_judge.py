"""The ``agentsim_judge`` fixture: LLM-judge intent checks in Python tests, from cassettes.

``agentsim_judge.assert_intent(text, "offers a room")`` (or ``.grade(...)`` for the
:class:`~pytest_agentsim.run.judge.Verdict`) asks the judge model whether ``text`` fulfils the
intent. The exchanges live in ``__cassettes__/<test module>/<test name>.yaml`` beside the
test file: written with ``--agentsim-record``, replayed offline otherwise; a test without
its cassette is skipped with the command that records it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..run.judge import IntentJudge
from .settings import SETTINGS_KEY

__all__ = ["agentsim_judge"]


@pytest.fixture
def agentsim_judge(request: pytest.FixtureRequest) -> Iterator[IntentJudge]:
    from ..run.cassette import cassette_path
    from ..run.judge import open_intent_judge

    settings = request.config.stash[SETTINGS_KEY]
    node = request.node
    path = cassette_path(Path(node.path), node.name)
    rerecord = f'pytest --agentsim-record "{node.nodeid}"'
    if not settings.record and not path.is_file():
        pytest.skip(
            f"agentsim_judge has no cassette for this test ({path.name}): record the "
            f"judge's verdicts with `{rerecord}`"
        )
    judge = open_intent_judge(
        path=path,
        name=node.name,
        record=settings.record,
        judge_model=settings.judge_model,
        model_base_url=settings.model_base_url,
        rerecord=rerecord,
    )
    try:
        yield judge
    finally:
        if settings.record:
            judge.cassette.save()
