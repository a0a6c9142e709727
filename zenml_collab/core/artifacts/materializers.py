"""Materializers: turn a step's output value into files and back.

Each materializer has a ``name`` and a ``version`` (both part of the cache key: a change of the
on-disk format invalidates the cache). Types are recognised by module and class name so that
checking a value never imports numpy, pandas or scikit-learn.

Arbitrary objects are never pickled unless the step opts in with ``@step(allow_pickle=True)``:
unpickling runs code, and a shared store is shared with every member of the team. scikit-learn
estimators are stored with skops, whose loader builds only the types it is told to trust.

The materializer *name* of an artifact comes from the shared metadata store, so it is untrusted:
it is looked up in the fixed registry below, and each materializer declares the exact file names
it writes (``files``), so a recorded artifact can never name a file outside that layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from zenml_collab.core.artifacts.frames import ArrowFrameMaterializer, ParquetFrameMaterializer
from zenml_collab.errors import MaterializerError


class Materializer(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...

    @property
    def files(self) -> frozenset[str]:
        """Every file name this materializer may write: the whole on-disk layout."""
        ...

    def can_handle(self, value: Any) -> bool: ...
    def save(self, value: Any, directory: Path) -> list[str]: ...
    def load(self, directory: Path) -> Any: ...


def _write(directory: Path, files: dict[str, bytes]) -> list[str]:
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return list(files)


def _module_of(value: Any) -> str:
    return type(value).__module__.split(".", 1)[0]


def _is_numpy_scalar(value: Any) -> bool:
    return any(k.__module__ == "numpy" and k.__name__ == "generic" for k in type(value).__mro__)


def _plain(value: Any) -> Any:
    """numpy scalars (``arr.sum()``, ``argmax``) as the Python numbers they stand for."""
    if _is_numpy_scalar(value):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _is_jsonable(value: Any, depth: int = 0) -> bool:
    if depth > 50:
        return False
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if _is_numpy_scalar(value):
        return isinstance(value.item(), (bool, int, float, str))
    if isinstance(value, (list, tuple)):
        return all(_is_jsonable(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_jsonable(v, depth + 1) for k, v in value.items())
    return False


@dataclass(frozen=True)
class JsonMaterializer:
    name: str = "json"
    version: int = 1
    files: frozenset[str] = frozenset({"value.json"})

    def can_handle(self, value: Any) -> bool:
        return _is_jsonable(value)

    def encode(self, value: Any) -> dict[str, bytes]:
        return {"value.json": json.dumps(_plain(value), sort_keys=True).encode("utf-8")}

    def save(self, value: Any, directory: Path) -> list[str]:
        return _write(directory, self.encode(value))

    def load(self, directory: Path) -> Any:
        return json.loads((directory / "value.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class BytesMaterializer:
    name: str = "bytes"
    version: int = 1
    files: frozenset[str] = frozenset({"data.bin"})

    def can_handle(self, value: Any) -> bool:
        return isinstance(value, (bytes, bytearray, memoryview))

    def encode(self, value: Any) -> dict[str, bytes]:
        return {"data.bin": bytes(value)}

    def save(self, value: Any, directory: Path) -> list[str]:
        return _write(directory, self.encode(value))

    def load(self, directory: Path) -> Any:
        return (directory / "data.bin").read_bytes()


@dataclass(frozen=True)
class NumpyMaterializer:
    name: str = "numpy"
    version: int = 1
    files: frozenset[str] = frozenset({"array.npy"})

    def can_handle(self, value: Any) -> bool:
        # ndarray and its subclasses (np.memmap: inputs are loaded memory-mapped, and a step
        # may return one unchanged, sliced or reshaped).
        return any(k.__module__ == "numpy" and k.__name__ == "ndarray"
                   for k in type(value).__mro__)

    def save(self, value: Any, directory: Path) -> list[str]:
        import numpy as np

        value = np.asarray(value)
        if value.dtype == object:
            raise MaterializerError(
                "a numpy array of dtype=object cannot be stored without pickle",
                "convert it to a numeric or string dtype, or opt in with @step(allow_pickle=True)",
            )
        np.save(directory / "array.npy", value, allow_pickle=False)
        return ["array.npy"]

    def load(self, directory: Path) -> Any:
        import numpy as np

        # Copy-on-write memory map: no read or copy up front, pages come from the page cache
        # as the step touches them, and a step that writes to its input changes only its own
        # private copy, never the stored artifact.
        return np.load(directory / "array.npy", allow_pickle=False, mmap_mode="c")


# Module roots whose types a stored scikit-learn model may contain. skops reconstructs objects
# without unpickling; these are the estimators and the numpy/scipy values they hold.
TRUSTED_MODEL_MODULES = ("sklearn", "numpy", "scipy")
# A name outside skops's own defaults is trusted only where skops builds the object from state
# (``cls.__new__`` then ``__setstate__``; TreeNode's constructor is fixed to sklearn's Tree).
# Every other loader *calls* what the file names (ConstructorFromReduceNode and LossNode call
# ``name(*args)``) or hands back a function the model calls later (FunctionNode, MethodNode,
# PartialNode): ``numpy.testing._private.utils.runstring`` is "from numpy" and is ``exec``.
_STATE_ONLY_LOADERS = frozenset({"ObjectNode", "TreeNode"})
_NEVER_IMPORTED = ("__main__", "tests", "testing", "_testing", "conftest")
_MAX_SKOPS_SCHEMA = 64 << 20


def _skops_loaders(path: Path) -> dict[str, set[str]]:
    """``module.class`` -> the skops loaders the file uses for it (read as data, no import)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        if archive.getinfo("schema.json").file_size > _MAX_SKOPS_SCHEMA:
            # A few KiB for real models: a larger one is a decompression bomb.
            raise MaterializerError(
                f"the stored model's schema expands to more than {_MAX_SKOPS_SCHEMA >> 20} MiB; "
                "it was not loaded", "the artifact was written by a broken or hostile client")
        schema = json.loads(archive.read("schema.json"))
    loaders: dict[str, set[str]] = {}
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            loader, module, cls = (node.get("__loader__"), node.get("__module__"),
                                   node.get("__class__"))
            if isinstance(loader, str) and isinstance(module, str) and isinstance(cls, str):
                loaders.setdefault(f"{module}.{cls}", set()).add(loader)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return loaders


def _refused_model_types(loaders: dict[str, set[str]], untrusted: list[str]) -> list[str]:
    refused = []
    for name in untrusted:
        parts = name.split(".")
        used = loaders.get(name)
        if (parts[0] != "sklearn" or any(p in _NEVER_IMPORTED for p in parts) or not used
                or not used <= _STATE_ONLY_LOADERS
                or ("TreeNode" in used and name != "sklearn.tree._tree.Tree")):
            refused.append(name)
    return refused


def _canonical_skops(data: bytes) -> bytes:
    """The same skops file for the same model, in any process.

    skops names objects by ``id()`` (``"__id__"`` values, ``<id>.npy`` members) and stamps zip
    members with the current time, so two members fitting the same model would store two
    artifacts and every downstream step would miss. Renumber the ids in order of appearance
    and fix the timestamps: the content address then depends on the model alone.
    """
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as src:
        schema = json.loads(src.read("schema.json"))
        ids: dict[int, int] = {}

        def renumber(node: Any) -> Any:
            if isinstance(node, dict):
                out: dict[str, Any] = {}
                for key, item in node.items():
                    if key == "__id__" and isinstance(item, int):
                        out[key] = ids.setdefault(item, len(ids) + 1)
                    elif (key == "file" and isinstance(item, str) and item.endswith(".npy")
                          and item[:-4].isdigit()):
                        out[key] = f"{ids.setdefault(int(item[:-4]), len(ids) + 1)}.npy"
                    else:
                        out[key] = renumber(item)
                return out
            if isinstance(node, list):
                return [renumber(item) for item in node]
            return node

        canonical = renumber(schema)
        members = {"schema.json": json.dumps(canonical, indent=2).encode("utf-8")}
        for info in src.infolist():
            if info.filename == "schema.json":
                continue
            stem = info.filename.removesuffix(".npy")
            name = (f"{ids.setdefault(int(stem), len(ids) + 1)}.npy" if stem.isdigit()
                    else info.filename)
            members[name] = src.read(info)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name in ["schema.json", *sorted(n for n in members if n != "schema.json")]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, members[name])
    return out.getvalue()


@dataclass(frozen=True)
class SklearnMaterializer:
    """scikit-learn estimators via skops: no pickle, only trusted types are rebuilt on load."""

    name: str = "sklearn"
    version: int = 2
    files: frozenset[str] = frozenset({"model.skops"})

    def can_handle(self, value: Any) -> bool:
        return _module_of(value) == "sklearn" and hasattr(value, "get_params")

    def save(self, value: Any, directory: Path) -> list[str]:
        import skops.io as sio

        (directory / "model.skops").write_bytes(_canonical_skops(sio.dumps(value)))
        return ["model.skops"]

    def load(self, directory: Path) -> Any:
        import skops.io as sio

        path = directory / "model.skops"
        loaders = _skops_loaders(path)  # first: it bounds what skops then reads
        untrusted = sio.get_untrusted_types(file=path)
        refused = _refused_model_types(loaders, untrusted)
        if refused:
            raise MaterializerError(
                f"the stored model contains types or calls skops does not trust and that are "
                f"not scikit-learn estimators: {', '.join(sorted(refused)[:5])}; it was not "
                f"loaded",
                "a model in the shared store may only hold scikit-learn estimators; if you "
                "trust its author, load it yourself with skops.io.load(path, trusted=[...])")
        from zenml_collab.core.artifacts.model_checks import check_model

        model = sio.load(path, trusted=untrusted)
        check_model(model)  # trees' index arrays: sklearn's Cython does not bounds-check them
        return model


@dataclass(frozen=True)
class JoblibSklearnMaterializer:
    """scikit-learn models stored by zenml-collab < 0.2 with joblib: a pickle, so opt-in only."""

    name: str = "sklearn"
    version: int = 1
    files: frozenset[str] = frozenset({"model.joblib"})

    def can_handle(self, value: Any) -> bool:
        return False

    def save(self, value: Any, directory: Path) -> list[str]:
        raise MaterializerError("joblib is no longer used to store models", None)

    def load(self, directory: Path) -> Any:
        import joblib

        return joblib.load(directory / "model.joblib")


@dataclass(frozen=True)
class PickleMaterializer:
    name: str = "pickle"
    version: int = 1
    files: frozenset[str] = frozenset({"value.pkl"})

    def can_handle(self, value: Any) -> bool:
        return True

    def save(self, value: Any, directory: Path) -> list[str]:
        import pickle

        with open(directory / "value.pkl", "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return ["value.pkl"]

    def load(self, directory: Path) -> Any:
        import pickle

        with open(directory / "value.pkl", "rb") as fh:
            return pickle.load(fh)


_SAFE: tuple[Materializer, ...] = (
    JsonMaterializer(),
    BytesMaterializer(),
    NumpyMaterializer(),
    ArrowFrameMaterializer(),
    SklearnMaterializer(),
)
_PICKLE = PickleMaterializer()
_LEGACY_JOBLIB = JoblibSklearnMaterializer()
# Formats an older zenml-collab wrote under a name still in use: read, never written. Told
# apart by the files an artifact records.
_LEGACY: tuple[Materializer, ...] = (_LEGACY_JOBLIB, ParquetFrameMaterializer())
_BY_NAME: dict[str, Materializer] = {m.name: m for m in (*_SAFE, _PICKLE)}
# Materializers whose load runs code from the file: a reader opts in, as the writer did.
RUNS_CODE_ON_LOAD = (_PICKLE, _LEGACY_JOBLIB)

# Part of every cache key: bump when any materializer's format changes.
MATERIALIZERS_VERSION = "1:" + ",".join(f"{m.name}{m.version}" for m in (*_SAFE, _PICKLE))


def materializer_for(value: Any, *, allow_pickle: bool = False) -> Materializer:
    for materializer in _SAFE:
        if materializer.can_handle(value):
            return materializer
    if allow_pickle:
        return _PICKLE
    raise MaterializerError(
        f"no materializer can store a value of type {type(value).__module__}.{type(value).__qualname__}",
        "return JSON-able values, bytes, a numpy array, a pandas DataFrame or a scikit-learn "
        "estimator, or opt in to pickle with @step(allow_pickle=True)",
    )


def materializer_named(name: str, files: tuple[str, ...] = ()) -> Materializer:
    """The registered materializer called ``name`` whose layout holds ``files``.

    Both come from the shared metadata store: an unknown name is refused, never imported.
    """
    try:
        current = _BY_NAME[name]
    except KeyError:
        raise MaterializerError(
            f"unknown materializer {name[:64]!r} recorded for an artifact",
            "upgrade zenml-collab to the version that wrote it; the known ones are "
            + ", ".join(sorted(_BY_NAME)),
        ) from None
    if files and not set(files) <= current.files:
        for legacy in _LEGACY:
            if legacy.name == name and set(files) <= legacy.files:
                return legacy
    return current
