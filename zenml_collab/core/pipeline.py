"""Pipelines: a named DAG of configured steps, ordered with :mod:`graphlib`.

>>> p = Pipeline("demo")
>>> p.add(load, params={"n": 10})                  # doctest: +SKIP
'load'
>>> p.add(double, inputs={"xs": "load"})           # doctest: +SKIP
'double'
>>> run = p.run()                                  # doctest: +SKIP
"""

from __future__ import annotations

import graphlib
import importlib
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zenml_collab.core.hashing import canonical_json
from zenml_collab.core.pipeline_config import BACKENDS, STEP_NAME, CreatedInfo, PipelineConfig, StepConfig
from zenml_collab.core.step import BaseStep, Step, StepImpl, check_params, resolve_impl
from zenml_collab.errors import ImmutablePipelineError, PipelineError

if TYPE_CHECKING:
    from zenml_collab.core.registry import PipelineHost
    from zenml_collab.core.run import Run


@dataclass(frozen=True)
class InputRef:
    arg: str
    step: str
    output: str


@dataclass(frozen=True)
class StepNode:
    """One configured step of a pipeline: an immutable value."""

    name: str
    impl: StepImpl
    params_json: str
    inputs: tuple[InputRef, ...]
    backend: str | None = None  # None: the team's default (see README: Beyond one machine)

    @property
    def params(self) -> dict[str, Any]:
        # A fresh copy every time: nothing mutable is shared between pipelines.
        return dict(json.loads(self.params_json))

    def to_config(self) -> StepConfig:
        return StepConfig(
            name=self.name,
            step=self.impl.import_path,
            params=self.params,
            inputs={i.arg: f"{i.step}.{i.output}" for i in self.inputs},
            code_hash=self.impl.code_hash,
            backend=self.backend,
        )


def import_step(path: str) -> Step | type[BaseStep]:
    module_name, _, qualname = path.partition(":")
    if module_name == "__main__":
        raise PipelineError(
            f"step {path!r} was defined in the script that first ran this pipeline, so it "
            "cannot be imported again",
            "move the step into a module of the repository (e.g. steps.py), import it from "
            "there, and run the pipeline under a new name")
    if "__main__" in module_name.split(".") or not all(
            part.isidentifier() for part in module_name.split(".")):
        # The path comes from a committed config: importing ``venv.__main__`` (or any
        # package's ``__main__``) runs that program with the CLI's own arguments.
        raise PipelineError(
            f"step {path[:200]!r} is not an importable step module",
            "a step entry names a module of the repository and a step in it, "
            "e.g. 'steps:train'; check the 'step:' entry of the pipeline config")
    from zenml_collab.core.step_trust import TRUSTED_MODULES_ENV, untrusted_reason

    refused = untrusted_reason(module_name)
    if refused is not None:
        raise PipelineError(
            f"step {path[:200]!r} was not imported: {refused}; a pipeline config may only name "
            "steps of the repository (or of zenml-collab)",
            "put the step in a module of the repository; to run steps from an installed "
            f"package you trust, set {TRUSTED_MODULES_ENV}=<package> (or add its directory to "
            "PYTHONPATH)")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PipelineError(
            f"cannot import step {path!r}: {exc}",
            "run from the repository root with the step's package importable, and check "
            "the 'step:' entry of the pipeline config",
        ) from None
    if isinstance(obj, Step) or (isinstance(obj, type) and issubclass(obj, BaseStep)):
        return obj
    raise PipelineError(f"{path!r} is not a step",
                        "decorate it with @step or subclass zenml_collab.BaseStep")


class Pipeline:
    """A named, ordered set of steps. Frozen once it has run: change a copy instead."""

    KIND = "pipeline"

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise PipelineError("a pipeline needs a non-empty name", "e.g. Pipeline('Pipeline A')")
        self.name = name
        self._nodes: dict[str, StepNode] = {}
        self._frozen_reason: str | None = None
        self._created: dict[str, Any] | None = None

    # -- building -------------------------------------------------------------------------
    def _check_mutable(self, action: str) -> None:
        if self._frozen_reason:
            raise ImmutablePipelineError(
                f"cannot {action}: pipeline {self.name!r} is immutable ({self._frozen_reason})",
                f"make an editable copy: new = pipeline.copy(new_name='{self.name} v2')",
            )

    def add(self, step_obj: Step | BaseStep | type[BaseStep], *, name: str | None = None,
            inputs: Mapping[str, str] | None = None,
            params: Mapping[str, Any] | None = None, backend: str | None = None) -> str:
        """Add a step; ``inputs`` maps argument names to ``"step"`` or ``"step.output"``.

        ``backend`` (``"local"``, ``"docker"``, ``"vertex"``) says where the step executes;
        it is recorded, not part of the cache key.
        """
        self._check_mutable("add a step")
        node = self._make_node(step_obj, name=name, inputs=inputs, params=params,
                               backend=backend)
        if node.name in self._nodes:
            raise PipelineError(f"pipeline {self.name!r} already has a step named {node.name!r}",
                                "pass name='...' to add() to give the step another name")
        self._nodes[node.name] = node
        return node.name

    def set_params(self, step_name: str, **params: Any) -> None:
        """Change parameters of one step (of an editable pipeline, e.g. a copy)."""
        self._check_mutable("change parameters")
        node = self.step(step_name)
        merged = {**node.params, **params}
        check_params(step_name, merged)
        self._nodes[step_name] = StepNode(node.name, node.impl, canonical_json(merged), node.inputs,
                                          node.backend)

    def _make_node(self, step_obj: Any, *, name: str | None, inputs: Mapping[str, str] | None,
                   params: Mapping[str, Any] | None, backend: str | None = None) -> StepNode:
        if backend is not None and backend not in BACKENDS:
            raise PipelineError(f"unknown backend {backend!r}",
                                f"use one of {', '.join(BACKENDS)} (or leave it unset)")
        impl, own_params = resolve_impl(step_obj)
        all_params = {**own_params, **(params or {})}
        step_name = name or impl.import_path.rsplit(":", 1)[1].rsplit(".", 1)[-1]
        if not STEP_NAME.match(step_name):
            raise PipelineError(f"invalid step name {step_name!r}",
                                "use letters, digits, '_' and '-' only")
        check_params(step_name, all_params)
        refs = tuple(self._input_ref(step_name, arg, src) for arg, src in (inputs or {}).items())
        _check_signature(step_obj, step_name, {r.arg for r in refs}, set(all_params))
        return StepNode(step_name, impl, canonical_json(all_params), refs, backend)

    def _input_ref(self, step_name: str, arg: str, source: str) -> InputRef:
        src_step, _, output = source.partition(".")
        node = self._nodes.get(src_step)
        if node is None:
            raise PipelineError(
                f"step {step_name!r}: input {arg!r} refers to unknown step {src_step!r}",
                f"add {src_step!r} before {step_name!r}; known steps: {', '.join(self._nodes) or 'none'}",
            )
        if not output:
            if len(node.impl.output_names) != 1:
                raise PipelineError(
                    f"step {step_name!r}: input {arg!r}: step {src_step!r} has several outputs",
                    f"name one: {', '.join(f'{src_step}.{o}' for o in node.impl.output_names)}",
                )
            output = node.impl.output_names[0]
        if output not in node.impl.output_names:
            raise PipelineError(
                f"step {step_name!r}: step {src_step!r} has no output {output!r}",
                f"its outputs are: {', '.join(node.impl.output_names)}",
            )
        return InputRef(arg, src_step, output)

    # -- reading --------------------------------------------------------------------------
    @property
    def steps(self) -> tuple[StepNode, ...]:
        """Steps in a topological order (inputs before the steps that use them)."""
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for node in self._nodes.values():
            sorter.add(node.name, *(i.step for i in node.inputs))
        try:
            order = list(sorter.static_order())
        except graphlib.CycleError as exc:
            raise PipelineError(f"pipeline {self.name!r} has a cycle: {' -> '.join(exc.args[1])}",
                                "a step cannot depend on itself or its descendants") from None
        return tuple(self._nodes[n] for n in order)

    def step(self, name: str) -> StepNode:
        try:
            return self._nodes[name]
        except KeyError:
            raise PipelineError(f"pipeline {self.name!r} has no step {name!r}",
                                f"its steps are: {', '.join(self._nodes)}") from None

    @property
    def is_frozen(self) -> bool:
        return self._frozen_reason is not None

    def to_config(self) -> PipelineConfig:
        return PipelineConfig(name=self.name, kind=self.KIND,  # type: ignore[arg-type]
                              steps=[n.to_config() for n in self.steps],
                              created=CreatedInfo(**self._created) if self._created else None)

    @classmethod
    def from_config(cls, config: PipelineConfig) -> Pipeline:
        from zenml_collab.core.registry import pipeline_class

        klass: type[Pipeline] = pipeline_class(config.kind) or Pipeline
        pipeline = klass(config.name)
        names = [s.name for s in config.steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise PipelineError(f"pipeline {config.name!r} has more than one step named "
                                f"{', '.join(map(repr, duplicates))}",
                                "give every entry of 'steps:' its own name (and point "
                                "'inputs:' at the one you mean)")
        known = set(names)
        for sc in config.steps:
            missing = [src for src in sc.inputs.values() if src.partition(".")[0] not in known]
            if missing:
                raise PipelineError(f"pipeline {config.name!r}: step {sc.name!r} refers to "
                                    f"unknown step(s) {missing}", "fix the 'inputs:' entry")
        # Add in dependency order, whatever order the file lists them in.
        pending = {s.name: s for s in config.steps}
        while pending:
            ready = [s for s in pending.values()
                     if all(src.partition(".")[0] in pipeline._nodes for src in s.inputs.values())]
            if not ready:
                raise PipelineError(f"pipeline {config.name!r} has a cycle among "
                                    f"{sorted(pending)}", "fix the 'inputs:' entries")
            for sc in ready:
                pipeline._nodes[sc.name] = pipeline._make_node(
                    import_step(sc.step), name=sc.name, inputs=sc.inputs, params=sc.params,
                    backend=sc.backend)
                del pending[sc.name]
        pipeline._created = config.created.model_dump() if config.created else None
        return pipeline

    # -- lifecycle ------------------------------------------------------------------------
    def copy(self, new_name: str) -> Pipeline:
        """An editable copy under a new name; this pipeline stays as it is."""
        if new_name == self.name:
            raise PipelineError("the copy needs a different name",
                                f"e.g. copy(new_name='{self.name} v2')")
        clone = type(self)(new_name)
        clone._nodes = dict(self._nodes)  # StepNodes are immutable values
        return clone

    def freeze(self, reason: str) -> None:
        self._frozen_reason = reason

    def run(self, repository: PipelineHost | None = None) -> Run:
        """Run on ``repository``'s stores (default: ``Repository()`` of the current
        directory); returns the :class:`Run`."""
        from zenml_collab.core.registry import default_host

        repo = repository or default_host()
        return repo.run_pipeline(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {', '.join(self._nodes)}>"


def _check_signature(step_obj: Any, step_name: str, inputs: set[str], params: set[str]) -> None:
    func = step_obj.func if isinstance(step_obj, Step) else None
    if func is None:
        klass = step_obj if isinstance(step_obj, type) else type(step_obj)
        func = getattr(klass, "run")  # noqa: B009 - a class, not an instance
        params = set()  # class parameters go to the constructor
    sig = inspect.signature(func)
    names = [n for n in sig.parameters if n != "self"]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    overlap = inputs & params
    if overlap:
        raise PipelineError(f"step {step_name!r}: {sorted(overlap)} given as both input and parameter",
                            "give each argument once")
    unknown = (inputs | params) - set(names)
    if unknown and not takes_any:
        raise PipelineError(f"step {step_name!r} has no argument(s) {sorted(unknown)}",
                            f"its arguments are: {', '.join(names) or 'none'}")
    required = {n for n in names if sig.parameters[n].default is inspect.Parameter.empty
                and sig.parameters[n].kind not in (inspect.Parameter.VAR_KEYWORD,
                                                   inspect.Parameter.VAR_POSITIONAL)}
    missing = required - inputs - params
    if missing:
        raise PipelineError(f"step {step_name!r} is missing argument(s) {sorted(missing)}",
                            "connect them with inputs={'arg': 'step'} or set them with params={...}")
