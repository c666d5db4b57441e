"""Load ``scenarios.yaml`` files exactly as ``lk agent simulate`` decodes them.

The cloud CLI parses with Go's yaml.v3 into ``{name, id, scenarios: [{id, label,
instructions, agent_expectations, tags, userdata}]}``, drops unknown keys and JSON-encodes
``userdata`` with ``encoding/json``. :mod:`pytest_agentsim.load.yamlv3` reproduces those
semantics; this module applies the schema, keeps every line number, and turns every
problem into a :class:`~pytest_agentsim.errors.ScenarioError` naming file:line and the fix.
It never imports pytest.
"""

from __future__ import annotations

import contextlib
import gc
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ..errors import ScenarioError, did_you_mean
from .block import parse_agentsim_block
from .model import AgentsimConfig, FileWarning, Scenario, ScenarioFile, merge_configs
from .nodes import Ctx, kind_of, line_of, mapping_pairs, no_complex_keys, text_of
from .yamlv3 import MAP_TAG, YamlError, compose_document, is_null, userdata_json

if TYPE_CHECKING:
    pass

__all__ = ["MAX_FILE_BYTES", "Scenario", "ScenarioFile", "load_scenario_file"]

FILE_KEYS = ("name", "id", "scenarios", "agentsim")
SCENARIO_KEYS = (
    "id",
    "label",
    "instructions",
    "agent_expectations",
    "tags",
    "userdata",
    "agentsim",
)
# Real files are a few hundred KiB at most; refuse anything that would stall collection.
MAX_FILE_BYTES = 16 * 1024 * 1024


def _typo_warning(
    key: str, known: tuple[str, ...], where: str, line: int | None
) -> FileWarning | None:
    guess = did_you_mean(key, known)
    if guess is None:
        return None
    return FileWarning(
        f"unknown key {key!r} in {where} is ignored (as lk agent simulate ignores it); "
        f"did you mean {guess!r}?",
        line,
    )


def _too_big(path: Path, size: int) -> ScenarioError:
    return ScenarioError(
        f"file is {size} bytes, over the {MAX_FILE_BYTES} byte limit",
        path=path,
        fix="split it into several scenario files",
    )


def _read(path: Path) -> bytes:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # a FIFO or device would block or never end
            raise ScenarioError(
                "not a regular file", path=path, fix="point pytest at a scenarios.yaml file"
            )
        if info.st_size > MAX_FILE_BYTES:
            raise _too_big(path, info.st_size)
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat()
    except OSError as e:
        raise ScenarioError(
            f"cannot read file: {e.strerror or e}",
            path=path,
            fix="check that the file exists and is readable",
        ) from None
    if len(data) > MAX_FILE_BYTES:
        raise _too_big(path, os.path.getsize(path))
    return data


def _optional_id(path: Path, node: yaml.Node | None, warnings: list[FileWarning]) -> str:
    """``id`` names pytest items only: the CLI has no such field and drops it, so a value
    it would not mind must not fail collection here either."""
    if node is None:
        return ""
    if isinstance(node, yaml.ScalarNode):
        return text_of(Ctx(path), node, "id")
    warnings.append(
        FileWarning(
            "`id` is not a string, so it is ignored (the item is named by its label)", line_of(node)
        )
    )
    return ""


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Loading allocates a node tree and a model that hold no reference cycles (reference
    counting frees them); cyclic-collector passes while they grow only re-scan them and all
    that pytest holds, which cost about a third of the load time."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def load_scenario_file(path: str | Path) -> ScenarioFile:
    """Read and validate one scenario file; raises ScenarioError on any problem."""
    path = Path(path)
    data = _read(path)
    with _gc_paused():
        # the node tree dies with _parse's frame: the collector resumes with the model only
        loaded, ignored = _parse(path, data)
    if ignored is not None:
        loaded.warnings.insert(
            0,
            FileWarning(
                "a second YAML document starts here; it is ignored, as lk agent simulate "
                "ignores it (only the first document is read): move its scenarios into the "
                "first document's `scenarios:` list or into a file of its own",
                ignored,
            ),
        )
    return loaded


def _parse(path: Path, data: bytes) -> tuple[ScenarioFile, int | None]:
    try:
        root, ignored = compose_document(data)
    except YamlError as e:
        raise ScenarioError(e.message, path=path, line=e.line, fix=e.fix) from None
    return _load(path, root), ignored


def _load(path: Path, root: yaml.Node) -> ScenarioFile:
    example = "name: My agent\nscenarios:\n  - label: ...\n    instructions: ..."
    if not isinstance(root, yaml.MappingNode):
        if is_null(root):
            raise Ctx(path).error(
                root,
                "the file holds only null: no `name`, no `scenarios`",
                f"start the file like:\n{example}",
            )
        raise Ctx(path).error(
            root,
            f"a scenario file must be a mapping with `name` and `scenarios`, got {kind_of(root)}",
            f"start the file like:\n{example}",
        )
    warnings: list[FileWarning] = []
    top: dict[str, yaml.Node] = {}
    no_complex_keys(Ctx(path), root, "the file", cli_fails=True)
    typos: dict[str, yaml.Node] = {}
    for k, v in mapping_pairs(root):
        if k.value in FILE_KEYS:
            top[k.value] = v
        elif (w := _typo_warning(k.value, FILE_KEYS, "the file", line_of(k))) is not None:
            warnings.append(w)
            typos[k.value] = k
    name = text_of(Ctx(path), top["name"], "name") if "name" in top else ""
    file_id = _optional_id(path, top.get("id"), warnings)
    file_cfg = (
        parse_agentsim_block(top["agentsim"], path, level="file")
        if "agentsim" in top
        else AgentsimConfig()
    )
    if "scenarios" not in top:
        typo = next(
            (k for t, k in typos.items() if did_you_mean(t, FILE_KEYS) == "scenarios"), None
        )
        if typo is not None:
            raise Ctx(path).error(
                typo,
                f"the file has no `scenarios` list (is {typo.value!r} a typo?)",
                f"rename {typo.value!r} to `scenarios`",
            )
        raise Ctx(path).error(
            root,
            "the file has no `scenarios` list",
            "add `scenarios:` with at least one `- label: ...` entry",
        )
    snode = top["scenarios"]
    if not isinstance(snode, yaml.SequenceNode) and not is_null(snode):
        raise Ctx(path).error(
            snode,
            f"`scenarios` must be a list of scenarios, got {kind_of(snode)}",
            "write each scenario as a `- label: ...` item",
        )
    if not isinstance(snode, yaml.SequenceNode) or not snode.value:
        raise Ctx(path).error(
            snode,
            "`scenarios` is empty (lk agent simulate would upload your "
            "source instead of running scenarios)",
            "add at least one scenario",
        )

    scenarios: list[Scenario] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(snode.value):
        sc = _scenario(path, index, node, file_cfg, warnings)
        base = sc.name
        if base in seen:
            seen[base] += 1
            sc.name = f"{base}#{seen[base]}"
            warnings.append(
                FileWarning(
                    f"scenario label {base!r} is used more than once; this one runs as "
                    f"{sc.name!r} (give it a unique `id` or label to keep ids stable)",
                    sc.line,
                )
            )
        else:
            seen[base] = 1
        scenarios.append(sc)
    return ScenarioFile(
        path=path, name=name, id=file_id, scenarios=scenarios, config=file_cfg, warnings=warnings
    )


def _scenario(
    path: Path, index: int, node: yaml.Node, file_cfg: AgentsimConfig, warnings: list[FileWarning]
) -> Scenario:
    if is_null(node):
        # yaml.v3 appends a zero scenario for a null item: an empty one, as `- {}` is
        node = yaml.MappingNode(MAP_TAG, [], node.start_mark, node.end_mark)
    if not isinstance(node, yaml.MappingNode):
        raise Ctx(path).error(
            node,
            f"scenario {index + 1} must be a mapping, got {kind_of(node)}",
            "write it as `- label: ...` with instructions and agent_expectations",
        )
    keys: dict[str, yaml.Node] = {}
    no_complex_keys(Ctx(path), node, f"scenario {index + 1}", cli_fails=True)
    for k, v in mapping_pairs(node):
        if k.value in SCENARIO_KEYS:
            keys[k.value] = v
        elif (
            w := _typo_warning(k.value, SCENARIO_KEYS, f"scenario {index + 1}", line_of(k))
        ) is not None:
            warnings.append(w)
    fields = {
        f: text_of(Ctx(path), keys[f], f) if f in keys else ""
        for f in ("label", "instructions", "agent_expectations")
    }
    fields["id"] = _optional_id(path, keys.get("id"), warnings)
    tags: dict[str, str] = {}
    if "tags" in keys:
        tnode = keys["tags"]
        if isinstance(tnode, yaml.MappingNode):
            no_complex_keys(Ctx(path), tnode, "tags", cli_fails=True)
            for k, v in mapping_pairs(tnode):
                name = text_of(Ctx(path), k, "a tag name")
                value = text_of(Ctx(path), v, f"tag {k.value!r}")
                if not is_null(k):  # yaml.v3 cannot set a null key in a map[string]string
                    tags[name] = value
        elif not is_null(tnode):
            raise Ctx(path).error(
                tnode,
                f"`tags` must be a mapping of names to values, got {kind_of(tnode)}",
                "e.g. tags: {feature: booking}",
            )
    try:
        ud = userdata_json(keys.get("userdata"))
    except YamlError as e:
        raise ScenarioError(e.message, path=path, line=e.line, fix=e.fix) from None
    cfg = file_cfg
    if "agentsim" in keys:
        cfg = merge_configs(
            file_cfg, parse_agentsim_block(keys["agentsim"], path, level="scenario")
        )
    label = fields["label"]
    name = fields["id"] or label
    if not name.strip():
        name = f"scenario-{index + 1}"
        warnings.append(
            FileWarning(f"scenario {index + 1} has no label; it runs as {name!r}", line_of(node))
        )
    # `::` separates pytest node id parts; keep ids parseable
    name = name.replace("::", ": :")
    return Scenario(
        path=path,
        index=index,
        line=line_of(node) or 1,
        label=label,
        id=fields["id"],
        instructions=fields["instructions"],
        agent_expectations=fields["agent_expectations"],
        tags=tags,
        userdata_json=ud,
        config=cfg,
        name=name,
    )
