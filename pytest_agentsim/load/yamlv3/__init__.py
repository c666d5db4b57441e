"""Decode scenario files the way ``lk agent simulate`` does: Go ``yaml.v3`` + ``encoding/json``.

The CLI unmarshals ``scenarios.yaml`` with gopkg.in/yaml.v3 (a YAML 1.2-ish resolver) and then
``json.Marshal``\\ s each scenario's ``userdata`` map. PyYAML resolves YAML 1.1 (``yes`` is a bool,
``2026-06-12T09:00:00`` a datetime, ``017`` is 15 but ``09`` an error...), so we only use PyYAML's
*parser* (libyaml when available) and build the node tree ourselves from its events:

* plain scalars keep their source text with the private tag :data:`PLAIN_TAG`; quoted and block
  scalars get ``tag:yaml.org,2002:str``; explicit tags are kept in long form (``!!int`` ->
  ``tag:yaml.org,2002:int``). ``ScalarNode.style`` is ``None`` for plain scalars with both parsers.
* aliases resolve to the anchored node object itself (as in PyYAML), so consumers never see
  alias nodes; everything yaml.v3 derives from aliases is checked while composing.
* yaml.v3 semantics we reproduce while composing: duplicate keys are an error (compared by node
  kind and source text, so ``1:`` and ``"1":`` clash), anchors may be redefined, aliases to an
  enclosing node are an error, ``<<`` needs a mapping or a list of mappings, and the
  "excessive aliasing" budget that stops billion-laughs documents.

Then :func:`decode` mirrors yaml.v3's ``resolve()`` and its decoding into ``interface{}``, and
:func:`go_json` mirrors ``encoding/json.Marshal``. Nothing here imports pytest or livekit.

``types`` holds the vocabulary, ``composer`` the event-driven composer (``syntax``: its
errors), ``resolve`` the scalar rules and ``decode`` the Go decoding and JSON encoding.
"""

from __future__ import annotations

from .composer import compose, compose_document
from .decode import decode, go_json, is_null, scalar_text, userdata_json
from .types import (
    MAP_TAG,
    MAX_DEPTH,
    PLAIN_TAG,
    SEQ_TAG,
    STR_TAG,
    GenericMap,
    GoJSONError,
    GoTime,
    NestingTooDeep,
    YamlError,
)

__all__ = [
    "MAP_TAG",
    "MAX_DEPTH",
    "PLAIN_TAG",
    "SEQ_TAG",
    "STR_TAG",
    "GenericMap",
    "GoJSONError",
    "GoTime",
    "NestingTooDeep",
    "YamlError",
    "compose",
    "compose_document",
    "decode",
    "go_json",
    "is_null",
    "scalar_text",
    "userdata_json",
]
