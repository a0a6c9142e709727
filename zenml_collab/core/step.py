"""Steps: the unit of work and of caching.

A step is either a function decorated with :func:`step` or a subclass of :class:`BaseStep`
whose constructor keywords are its parameters. Either way the step is identified by its import
path and fingerprinted by a *code hash*: the SHA-256 of its normalised source (the AST, so a
comment or a blank line does not invalidate the cache, but any real change does).

>>> @step
... def double(xs: list[int], factor: int = 2) -> list[int]:
...     return [x * factor for x in xs]
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from zenml_collab.core.hashing import canonical_json
from zenml_collab.errors import PipelineError

DEFAULT_OUTPUT = "output"


def _normalised_source_hash(obj: Any) -> str:
    try:
        source = textwrap.dedent(inspect.getsource(obj))
        tree = ast.parse(source)
        # Decorators are not the step's logic; docstrings are, arguably, not either, but
        # keeping them makes the rule simple to explain: everything but formatting counts.
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                node.decorator_list = []
        text = ast.dump(tree, include_attributes=False)
    except (OSError, TypeError, SyntaxError):
        # No source (stdin, `python -c`, a frozen app): fall back to the compiled code.
        code = getattr(obj, "__code__", None)
        text = _code_fingerprint(code) if code is not None else f"{obj.__module__}.{obj.__qualname__}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


SourceStamp = tuple[str, str] | None


def _source_stamp(obj: Any) -> SourceStamp:
    """(file, digest of its bytes) of the file defining ``obj``, now; ``None`` without a file.

    The bytes, not the modification time: two saves within the file system's time resolution
    would look unchanged. A steps file is small; reading it is microseconds.
    """
    code = getattr(obj, "__code__", None)
    file = code.co_filename if code is not None else getattr(
        sys.modules.get(getattr(obj, "__module__", "")), "__file__", None)
    if not file:
        return None
    try:
        with open(file, "rb") as fh:
            return str(file), hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


def _hash_unchanged(obj: Any, stamp: SourceStamp) -> str:
    """The code hash of ``obj``, read from its file only if the file is still what was imported.

    The hash is computed when first needed (a view of a recorded pipeline never needs it), not
    at import: were the file edited in between (a notebook that did not reload its module),
    the hash of the new source would be recorded for the old code that runs, and the cache
    would serve the old code's outputs to the new code.
    """
    if stamp is not None and _source_stamp(obj) != stamp:
        raise PipelineError(
            f"{stamp[0]} changed after step {obj.__qualname__!r} was imported: the code that "
            "would run is not the code in the file",
            "import it again (restart the notebook kernel, or importlib.reload the module) "
            "and build the pipeline again")
    return _normalised_source_hash(obj)


def _code_fingerprint(code: Any) -> str:
    """Bytecode, names and constants, nested code objects included by content: their repr
    holds a memory address, which would make the hash differ in every process."""
    consts = [_code_fingerprint(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts]
    return repr((code.co_code, code.co_names, consts))


def import_path_of(obj: Any) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def warn_if_unimportable(obj: Any) -> None:
    """A step defined in the script being run (``__main__``) runs, but nobody can import it
    again: `collab run` and teammates need it in a module."""
    if obj.__module__ == "__main__":
        import warnings

        warnings.warn(
            f"step {obj.__qualname__!r} is defined in the script you are running: this run "
            "works, but `collab run` and your teammates cannot import it; move it into a "
            "module (e.g. steps.py) and import it", UnimportableStepWarning, stacklevel=4)


class UnimportableStepWarning(UserWarning):
    """A step whose import path cannot be imported again (defined in ``__main__``)."""


@dataclass(frozen=True)
class StepImpl:
    """Everything the runner needs to know about a step's code."""

    import_path: str
    # Computes the code hash (reads and parses the source): called once, when first needed.
    # A view of a recorded pipeline never needs it; a run needs it for every cache key.
    hash_code: Callable[[], str]
    output_names: tuple[str, ...]
    input_names: tuple[str, ...]
    allow_pickle: bool
    call: Callable[[dict[str, Any], dict[str, Any]], Any]
    # Content of what the step reads from outside the pipeline (a data file), so that a
    # changed source invalidates the cache although the parameters did not change.
    fingerprint: Callable[[dict[str, Any]], str] | None = None

    @functools.cached_property
    def code_hash(self) -> str:
        return self.hash_code()


class Step:
    """A function step; created by :func:`step`. Calling it calls the plain function."""

    def __init__(self, func: Callable[..., Any], *, outputs: tuple[str, ...] | None = None,
                 allow_pickle: bool = False) -> None:
        functools.update_wrapper(self, func)
        self.func = func
        self.allow_pickle = allow_pickle
        self.output_names = tuple(outputs) if outputs else (DEFAULT_OUTPUT,)
        self.signature = inspect.signature(func)
        self._stamp = _source_stamp(func)  # at import: see _hash_unchanged

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<step {import_path_of(self.func)}>"

    @functools.cached_property
    def impl(self) -> StepImpl:
        def call(params: dict[str, Any], inputs: dict[str, Any]) -> Any:
            return self.func(**params, **inputs)

        return StepImpl(
            import_path=import_path_of(self.func),
            hash_code=lambda: _hash_unchanged(self.func, self._stamp),
            output_names=self.output_names,
            input_names=tuple(self.signature.parameters),
            allow_pickle=self.allow_pickle,
            call=call,
        )


def step(func: Callable[..., Any] | None = None, *, outputs: tuple[str, ...] | None = None,
         allow_pickle: bool = False) -> Any:
    """Make a function a step. ``outputs`` names several outputs (return a tuple or dict)."""
    if func is None:
        return lambda f: Step(f, outputs=outputs, allow_pickle=allow_pickle)
    return Step(func, outputs=outputs, allow_pickle=allow_pickle)


class BaseStep:
    """A configurable step class: constructor keywords are the step's parameters.

    Subclasses define ``run(self, **inputs)`` and may rename outputs with ``OUTPUTS``.
    """

    OUTPUTS: ClassVar[tuple[str, ...]] = (DEFAULT_OUTPUT,)
    INPUTS: ClassVar[tuple[str, ...]] = ()
    ALLOW_PICKLE: ClassVar[bool] = False
    _collab_source_stamp: ClassVar[SourceStamp] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._collab_source_stamp = _source_stamp(cls)  # at import: see _hash_unchanged

    def __init__(self, **params: Any) -> None:
        check_params(type(self).__name__, params)
        self.params: dict[str, Any] = dict(params)

    def run(self, *args: Any, **inputs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define run(self, <inputs>)")

    def fingerprint(self) -> str | None:
        """Override to hash external data the step reads (part of the cache key)."""
        return None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    @classmethod
    def impl(cls) -> StepImpl:
        impl = _CLASS_IMPLS.get(cls)
        if impl is None:
            impl = _CLASS_IMPLS[cls] = _class_impl(cls)
        return impl


_CLASS_IMPLS: dict[type[BaseStep], StepImpl] = {}  # source hashing once per class and process


def _class_impl(cls: type[BaseStep]) -> StepImpl:
    own = [k for k in cls.__mro__ if k not in (BaseStep, object)]

    def code_hash() -> str:
        return hashlib.sha256("".join(
            _hash_unchanged(k, k.__dict__.get("_collab_source_stamp")) for k in own
        ).encode()).hexdigest()

    def call(params: dict[str, Any], inputs: dict[str, Any]) -> Any:
        return cls(**params).run(**inputs)

    has_fingerprint = cls.fingerprint is not BaseStep.fingerprint

    def fingerprint(params: dict[str, Any]) -> str:
        return str(cls(**params).fingerprint())

    return StepImpl(
        import_path=import_path_of(cls),
        hash_code=code_hash,
        output_names=cls.OUTPUTS,
        input_names=cls.INPUTS,
        allow_pickle=cls.ALLOW_PICKLE,
        call=call,
        fingerprint=fingerprint if has_fingerprint else None,
    )


def check_params(owner: str, params: dict[str, Any]) -> None:
    """Parameters are part of the cache key and of the committed YAML: JSON values only."""
    try:
        canonical_json(params)
    except (TypeError, ValueError) as exc:
        raise PipelineError(
            f"parameters of {owner} must be JSON values (str, int, float, bool, None, lists, "
            f"dicts): {exc}",
            "pass data between steps as inputs, not parameters",
        ) from None


def resolve_impl(obj: Step | BaseStep | type[BaseStep]) -> tuple[StepImpl, dict[str, Any]]:
    """The implementation of a step object and the parameters it carries."""
    if isinstance(obj, Step):
        warn_if_unimportable(obj.func)
        return obj.impl, {}
    if isinstance(obj, BaseStep):
        warn_if_unimportable(type(obj))
        return type(obj).impl(), dict(obj.params)
    if isinstance(obj, type) and issubclass(obj, BaseStep):
        warn_if_unimportable(obj)
        return obj.impl(), {}
    raise PipelineError(
        f"{obj!r} is not a step",
        "decorate the function with @step or subclass zenml_collab.BaseStep",
    )
