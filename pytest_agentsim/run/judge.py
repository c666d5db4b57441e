"""The LLM judge: verdicts on a transcript or on one message's intent, from cassettes.

:func:`parse_verdict` reads a judge's answer. :class:`IntentJudge` grades one message
against an intent (``message: {judge: "offers a room"}`` in scripted turns, or the
``agentsim_judge`` fixture in Python): replaying, the answer comes from the cassette
(no request leaves the process); recording (:mod:`.recording`'s modes), the request goes
to the judge's real endpoint and the exchange is appended to the cassette. Intent checks run
inside synchronous expectation checks, so a recording request blocks the event loop while
it waits for the model (replay is instant). Never imports pytest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import urllib.error
import urllib.request
from typing import Any

from ..errors import JudgeError
from .cassette import Cassette, CassetteMiss, Interaction, parse_body, redact, redact_text
from .proxy import auth_header, upstreams

__all__ = ["IntentJudge", "JudgeError", "Verdict", "open_intent_judge", "parse_verdict"]

INTENT_PROMPT = """\
You are checking one message an AI voice agent said. Decide whether it fulfils this \
intent:

{intent}

Answer with a JSON object only: {{"verdict": "pass" or "fail", "reason": "<one sentence>"}}."""


@dataclasses.dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str

    def describe(self) -> str:
        return f"{'pass' if self.passed else 'fail'}: {self.reason}"


def parse_verdict(text: str) -> Verdict:
    """The judge's answer: JSON ``{"verdict", "reason"}``, or prose starting pass/fail."""
    raw = text.strip()
    match = re.search(r"\{.*\}", raw, re.S)
    if match:
        with contextlib.suppress(ValueError):
            data = json.loads(match.group(0))
            if isinstance(data, dict):
                verdict = str(data.get("verdict", data.get("result", ""))).strip().lower()
                if "success" in data and not verdict:
                    verdict = "pass" if data["success"] else "fail"
                reason = str(data.get("reason", "")).strip() or "(no reason given)"
                if verdict in ("pass", "passed", "true", "success"):
                    return Verdict(True, reason)
                if verdict in ("fail", "failed", "false", "failure"):
                    return Verdict(False, reason)
    head = raw.lower().lstrip("*# ")
    if head.startswith("pass"):
        return Verdict(True, raw)
    return Verdict(False, f"the judge gave no clear verdict: {raw!r}")


class IntentJudge:
    """Grades messages against intents, replayed from (or recorded to) ``cassette``."""

    def __init__(
        self,
        cassette: Cassette,
        *,
        model: str,
        upstream: str,
        rerecord: str,
        timeout: float = 60.0,
    ) -> None:
        self.cassette = cassette
        self.model = model
        self.upstream = upstream.rstrip("/")
        self.rerecord = rerecord
        self.timeout = timeout
        self.verdicts: dict[tuple[str, str], Verdict] = {}

    def grade(self, text: str, intent: str) -> Verdict:
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": INTENT_PROMPT.format(intent=intent.strip())},
                {"role": "user", "content": f"The agent said:\n{text}"},
            ],
            "temperature": 0,
        }
        answer = self._exchange(body)
        verdict = parse_verdict(answer)
        self.verdicts[(intent, text)] = verdict
        return verdict

    def assert_intent(self, text: str, intent: str) -> Verdict:
        """Fail (``AssertionError`` with the judge's reason) unless ``text`` fulfils ``intent``."""
        __tracebackhide__ = True
        verdict = self.grade(text, intent)
        if not verdict.passed:
            raise AssertionError(
                f"the judge says {text!r} does not fulfil {intent!r}: {verdict.reason}"
            )
        return verdict

    def reason_for(self, intent: str) -> str | None:
        """The reason of the latest verdict on ``intent`` (for failure messages)."""
        found = [v for (i, _), v in self.verdicts.items() if i == intent]
        return found[-1].reason if found else None

    def _exchange(self, body: dict[str, Any]) -> str:
        try:
            item = self.cassette.lookup("judge", "POST", "/chat/completions", redact(body))
        except CassetteMiss as e:
            raise JudgeError(f"{e}\n  fix: re-record with `{self.rerecord}`") from None
        if item is not None:
            if item.status != 200:
                raise JudgeError(f"the recorded judge request failed ({item.status})")
            return _content(item.response_body)
        url = self.upstream + "/chat/completions"
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": auth_header(self.model)},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                status, payload = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, payload = e.code, e.read()
        except OSError as e:
            self.cassette.failed = str(e)  # a failed recording leaves no cassette behind
            raise JudgeError(
                f"recording the judge request to {redact_text(url)} failed: {redact_text(str(e))}"
            ) from None
        self.cassette.add(
            Interaction(
                role="judge",
                method="POST",
                url=url,
                body=redact(body),
                status=status,
                content_type="application/json",
                response_body=parse_body(payload),
            )
        )
        if status != 200:
            raise JudgeError(f"the judge request failed ({status}): {payload[:300]!r}")
        return _content(parse_body(payload))


def open_intent_judge(
    *,
    cassette: Cassette,
    judge_model: str,
    model_base_url: str | None,
    rerecord: str,
) -> IntentJudge:
    """The judge for one test or scenario, replaying and/or recording ``cassette``
    (:func:`~.recording.open_cassette`)."""
    upstream = upstreams(
        model_base_url=model_base_url, user_model=judge_model, judge_model=judge_model
    )["judge"]
    return IntentJudge(
        cassette,
        model=judge_model,
        upstream=upstream,
        rerecord=rerecord,
    )


def _content(body: Any) -> str:
    try:
        return str(body["choices"][0]["message"].get("content") or "")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise JudgeError(f"the judge sent no chat completion: {body!r}") from None
