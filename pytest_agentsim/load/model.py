"""The scenario model: plain data, what a scenario file means once loaded.

Every element remembers its YAML line so a failure can point at it. Nothing here runs
anything: a ``judge`` text matcher is graded by the judge the caller passes in.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..answers import LLMAnswer, TTSAnswer
from ..errors import JudgeError, ScenarioError
from ..faults import Fault

if TYPE_CHECKING:
    from livekit.protocol.agent_simulation import Scenario as ScenarioProto

Mode = Literal["text", "audio"]
Transport = Literal["fake", "gateway"]
MatchKind = Literal["contains", "not_contains", "equals", "regex", "judge"]
MATCH_KINDS: tuple[MatchKind, ...] = ("contains", "not_contains", "equals", "regex", "judge")

EVENT_TYPES = ("message", "function_call", "function_call_output", "agent_handoff")

CLOSE_REASONS = (
    "error",
    "job_shutdown",
    "participant_disconnected",
    "user_initiated",
    "task_completed",
)


@dataclasses.dataclass(frozen=True)
class TextMatcher:
    """How a piece of text is checked: ``contains``/``not_contains`` (case-insensitive),
    ``equals``, ``regex`` (``re.search``) or ``judge`` (an LLM judge's verdict)."""

    kind: MatchKind
    value: str
    line: int | None = None

    def matches(self, text: str | None, judge: Judge | None = None) -> bool:
        """Whether ``text`` matches; a ``judge`` matcher asks ``judge`` (the run's LLM
        judge, replayed from its cassette)."""
        text = text or ""
        if self.kind == "contains":
            return self.value.casefold() in text.casefold()
        if self.kind == "not_contains":
            return self.value.casefold() not in text.casefold()
        if self.kind == "equals":
            return text.strip() == self.value.strip()
        if self.kind == "regex":
            return re.search(self.value, text) is not None
        if judge is None:
            raise JudgeError(
                f"judge {self.value!r}: no LLM judge in this run (judge matchers run in "
                "YAML scenarios, from a cassette)"
            )
        return judge.grade(text, self.value).passed

    def captures(self, text: str | None) -> dict[str, str]:
        """The named groups a matching ``regex`` captured (for ``${name}`` later)."""
        if self.kind != "regex":
            return {}
        found = re.search(self.value, text or "")
        return {k: v for k, v in found.groupdict().items() if v is not None} if found else {}

    def describe(self, judge: Judge | None = None) -> str:
        if self.kind == "judge" and judge is not None:
            reason = judge.reason_for(self.value)
            if reason:
                return f"judge {self.value!r} (the judge: {reason})"
        return f"{self.kind} {self.value!r}"


class Verdict(Protocol):
    @property
    def passed(self) -> bool: ...


class Judge(Protocol):
    """What a ``judge`` matcher needs: a grade, and the reason it gave for an intent."""

    def grade(self, text: str, intent: str) -> Verdict: ...

    def reason_for(self, intent: str) -> str | None: ...


@dataclasses.dataclass(frozen=True)
class EventExpectation:
    """One expected ``RunResult`` event, in order."""

    type: str
    line: int | None = None
    role: str | None = None  # message
    text: TextMatcher | None = None  # message content / function_call_output output
    name: str | None = None  # function_call
    arguments: dict[str, Any] | None = None  # function_call: subset that must match
    is_error: bool | None = None  # function_call_output
    new_agent: str | None = None  # agent_handoff: class name
    interrupted: bool | None = None  # message: cut off by the user (voice time)

    def describe(self) -> str:
        parts = [self.type]
        if self.role:
            parts.append(f"role={self.role}")
        if self.name:
            parts.append(f"name={self.name}")
        if self.arguments:
            parts.append(f"arguments⊇{self.arguments}")
        if self.text:
            parts.append(self.text.describe())
        if self.is_error is not None:
            parts.append(f"is_error={self.is_error}")
        if self.new_agent:
            parts.append(f"new_agent={self.new_agent}")
        return " ".join(parts)


@dataclasses.dataclass(frozen=True)
class SpokenExpectation:
    text: TextMatcher
    source: str | None = None  # "tts" | "audio" | "text"
    line: int | None = None
    interrupted: bool | None = None  # heard only in part: the user barged in


@dataclasses.dataclass(frozen=True)
class CloseExpectation:
    """``closed: true`` / ``closed: {reason: ...}``: the session must close in this turn;
    ``closed: false``: it must still be open after it."""

    closed: bool
    reason: str | None = None
    line: int | None = None


@dataclasses.dataclass(frozen=True)
class ModelStep:
    """One scripted model call: an answer or a fault."""

    answer: LLMAnswer | TTSAnswer | None
    fault: Fault | None
    line: int | None = None


@dataclasses.dataclass(frozen=True)
class ToolMock:
    name: str
    value: Any = None
    raise_message: str | None = None
    line: int | None = None


@dataclasses.dataclass(frozen=True)
class ScheduledFault:
    fault: Fault
    resource: str
    line: int | None = None


@dataclasses.dataclass(frozen=True)
class Turn:
    index: int
    line: int | None
    user: str | None = None
    say: str | None = None
    generate_reply: str | None = None
    silence: float | None = None  # the user says nothing for that long (virtual seconds)
    noise: float | None = None  # a sound with no words (a cough): livekit hears no words
    pause: float | None = None  # the user waits that long after the agent finished
    within: float | None = None  # latency budget: the agent starts speaking within it
    interrupt: float | None = None  # barge-in: seconds into the agent's previous reply
    llm: tuple[ModelStep, ...] = ()
    tts: tuple[ModelStep, ...] = ()
    tools: tuple[ToolMock, ...] = ()
    expect: tuple[EventExpectation, ...] | None = None
    spoken: tuple[SpokenExpectation, ...] | None = None
    closed: CloseExpectation | None = None
    output: TextMatcher | None = None  # the turn's RunResult.output (user turns)
    input_required: TextMatcher | None = None  # the question it waits on (livekit 2)

    @property
    def is_greeting(self) -> bool:
        """The greeting (turn 0): what the agent does on its own before the first turn."""
        return (
            self.user is None
            and self.say is None
            and self.generate_reply is None
            and self.silence is None
            and self.noise is None
        )

    @property
    def label(self) -> str:
        """How messages name it: ``turn 2``, or ``the greeting``."""
        return "the greeting" if self.is_greeting else f"turn {self.index + 1}"

    def describe(self) -> str:
        if self.user is not None:
            return f"user: {self.user}"
        if self.say is not None:
            return f"say: {self.say}"
        if self.generate_reply is not None:
            return f"generate_reply: {self.generate_reply}".rstrip()
        if self.silence is not None:
            return f"silence: {self.silence:g} s"
        if self.noise is not None:
            return f"noise: {self.noise:g} s"
        return "greeting"


DEFAULT_WORDS_PER_MINUTE = 150.0
DEFAULT_STT_DELAY = 0.2


@dataclasses.dataclass(frozen=True)
class Timing:
    """``timing:`` provider delays on the scenario's clock (SPEC §10); None: not set here."""

    llm_ttft: float | None = None
    tts_ttfb: float | None = None
    stt_delay: float | None = None  # spoken turns: end of speech to the final transcript
    words_per_minute: float | None = None  # spoken turns: how fast the user talks

    def over(self, base: Timing | None) -> Timing:
        """These values, with ``base``'s where these are not set."""
        if base is None:
            return self
        mine = dataclasses.asdict(self)
        return Timing(**{k: v if v is not None else getattr(base, k) for k, v in mine.items()})

    def speech(self, text: str) -> tuple[float, float]:
        """A spoken user turn's (seconds of speech, STT delay): at ``words_per_minute``
        (default 150), and ``stt_delay`` (default 0.2 s)."""
        wpm = self.words_per_minute or DEFAULT_WORDS_PER_MINUTE
        stt_delay = self.stt_delay if self.stt_delay is not None else DEFAULT_STT_DELAY
        return max(len(text.split()), 1) * 60.0 / wpm, stt_delay

    def delayed(self, answer: LLMAnswer) -> LLMAnswer:
        """``answer`` with ``llm_ttft`` as its time to first token, unless it has its own."""
        if answer.ttft is not None or self.llm_ttft is None:
            return answer
        return dataclasses.replace(answer, ttft=self.llm_ttft)


@dataclasses.dataclass(frozen=True)
class SessionEnd:
    """``session_end:``: answers for the model calls made after the call (models built in
    ``on_session_end`` or shutdown callbacks, e.g. an ``evals.JudgeGroup``)."""

    llm: tuple[ModelStep, ...] = ()
    line: int | None = None


@dataclasses.dataclass(frozen=True)
class AgentsimConfig:
    """The effective ``agentsim`` settings of one scenario (file defaults + overrides).

    ``None`` means "not set here" so the plugin can fall back to ini/CLI values; the
    ``*_line`` fields and ``agent_origin`` say where a value came from.
    """

    agent: str | None = None
    agent_origin: Path | None = None  # the YAML file that named the agent (for relative imports)
    agent_line: int | None = None
    mode: Mode | None = None
    timeout: float | None = None
    turns: tuple[Turn, ...] | None = None
    faults: tuple[ScheduledFault, ...] = ()
    snapshot: bool | None = None
    snapshot_mask: tuple[str, ...] = ()  # regexes whose matches a snapshot shows as <masked>
    transport: Transport | None = None
    process: bool | None = None
    allow_unused: bool | None = None
    skip: str | None = None
    greeting: Turn | None = None
    session_end: SessionEnd | None = None
    session: dict[str, Any] | None = None  # AgentSession arguments for Agent targets
    session_line: int | None = None
    env: dict[str, str | None] | None = None  # set (None: unset) while importing and running
    timing: Timing | None = None
    timing_line: int | None = None
    line: int | None = None


def on_the_clock(scenario: Scenario) -> tuple[int | None, str] | None:
    """The first key of ``scenario`` measured on the virtual clock (line, key), if any."""
    cfg = scenario.config
    if cfg.timing is not None:
        return cfg.timing_line, "timing"
    for t in [*([cfg.greeting] if cfg.greeting else []), *(cfg.turns or ())]:
        for key in ("within", "interrupt", "noise"):
            if getattr(t, key) is not None:
                return t.line, key
        for step in (*t.llm, *t.tts):
            if getattr(step.answer, "ttft", None) is not None:
                return step.line, "ttft"
            if getattr(step.answer, "ttfb", None) is not None:
                return step.line, "ttfb"
    return None


def merge_configs(base: AgentsimConfig, override: AgentsimConfig) -> AgentsimConfig:
    """Scenario-level values win over file-level ones; fault schedules add up."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(AgentsimConfig):
        mine = getattr(override, field.name)
        values[field.name] = mine if mine is not None else getattr(base, field.name)
    if override.agent is None:
        values["agent_origin"], values["agent_line"] = base.agent_origin, base.agent_line
    if override.session is None:
        values["session_line"] = base.session_line
    values["faults"] = base.faults + override.faults
    values["snapshot_mask"] = base.snapshot_mask + override.snapshot_mask
    if base.env is not None and override.env is not None:
        values["env"] = {**base.env, **override.env}
    if override.timing is not None:
        values["timing"] = override.timing.over(base.timing)
    else:
        values["timing_line"] = base.timing_line
    values["line"] = override.line if override.line is not None else base.line
    return AgentsimConfig(**values)


@dataclasses.dataclass(frozen=True)
class FileWarning:
    message: str
    line: int | None


@dataclasses.dataclass(eq=False)
class Scenario:
    """One scenario as the cloud receives it, plus its local ``agentsim`` script."""

    path: Path
    index: int
    line: int
    label: str
    id: str
    instructions: str
    agent_expectations: str
    tags: dict[str, str]
    userdata_json: str
    config: AgentsimConfig
    name: str  # the pytest item name: id or label, disambiguated within the file

    @property
    def userdata(self) -> dict[str, Any]:
        """What ``SimulationContext.userdata()`` returns in the cloud (``{}`` if empty)."""
        if not self.userdata_json:
            return {}
        data: dict[str, Any] = json.loads(self.userdata_json)
        return data

    @property
    def uses_judge(self) -> bool:
        """Whether its scripted turns grade any text with the LLM judge (``judge:``)."""
        for turn in self.config.turns or ():
            matchers = [e.text for e in turn.expect or ()] + [s.text for s in turn.spoken or ()]
            if any(m is not None and m.kind == "judge" for m in matchers):
                return True
        return False

    @property
    def scripted(self) -> bool:
        """True when the scenario has ``agentsim.turns`` (else it is a simulated scenario)."""
        return self.config.turns is not None

    def to_proto(self) -> ScenarioProto:
        """The ``livekit.protocol.agent_simulation.Scenario`` the CLI would send.

        ``lk agent simulate`` decodes only label, instructions, agent_expectations, tags and
        userdata (its scenario struct has no ``id``), so ``id`` stays empty here too; the
        scenario's own ``id`` only names the pytest item.
        """
        from livekit.protocol.agent_simulation import Scenario as ScenarioProto

        return ScenarioProto(
            label=self.label,
            instructions=self.instructions,
            agent_expectations=self.agent_expectations,
            tags=dict(self.tags),
            userdata=self.userdata_json,
        )

    def __repr__(self) -> str:
        return f"<Scenario {self.name!r} {self.path.name}:{self.line}>"


@dataclasses.dataclass(eq=False)
class ScenarioFile:
    path: Path
    name: str
    id: str
    scenarios: list[Scenario]
    config: AgentsimConfig
    warnings: list[FileWarning]

    def by_label(self, label: str) -> Scenario:
        for s in self.scenarios:
            if label in (s.label, s.name, s.id):
                return s
        labels = ", ".join(repr(s.label) for s in self.scenarios)
        raise ScenarioError(
            f"no scenario labelled {label!r}", path=self.path, fix=f"pick one of: {labels}"
        )
