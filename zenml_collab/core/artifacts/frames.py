"""pandas DataFrames and Series as artifacts: one uncompressed Arrow IPC file, mapped on load.

Data flows between the steps of a training pipeline as DataFrames, so their format sets most of
a cold run's cost. Arrow IPC without compression is the in-memory layout written out: saving
is a copy of each column's buffers to the file, and loading maps the file and hands pandas the
mapped memory (no read, no decode, no copy). A step that touches only some columns (the
evaluator reads two of the split frame's) pays only for the pages it touches.

Format 1 (Parquet) is still read, so artifacts stored before keep loading; nothing writes it.

The bytes come from a shared store (DESIGN §10): an IPC file says where each column's values
are, and Arrow does not check offsets into string data unless asked, so every table is fully
validated before pandas sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenml_collab.errors import MaterializerError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

SERIES_MARK = "series"


def _is_frame_or_series(value: Any) -> bool:
    return (type(value).__module__.split(".", 1)[0] == "pandas"
            and type(value).__name__ in {"DataFrame", "Series"})


def _as_frame(value: Any) -> tuple[Any, bool]:
    series = type(value).__name__ == "Series"
    return (value.to_frame() if series else value), series


def _canonical_table(frame: pd.DataFrame) -> pa.Table:
    """The frame as an Arrow table laid out the same way whatever its history.

    A column read from a CSV comes in chunks, one computed by pandas in one piece; IPC writes
    chunks as they are, so equal data would make different bytes (and a different artifact).
    Numeric columns convert without a copy; only a chunked column is joined.
    """
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=None)
    if all(column.num_chunks <= 1 for column in table.columns):
        return table
    try:
        return table.combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowCapacityError):
        return table  # a text column past 2 GiB stays chunked (as the same data always does)


def _release_pool() -> None:
    """Give the memory Arrow's allocator keeps after frees back to the system.

    The pool keeps what a step freed (a joined column, a parser's blocks) for reuse, and
    a pipeline's steps come one after another, each allocating anew: kept, it adds up to
    the next step's peak. Cheap (a few ms), so done at each frame saved or loaded.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _writable(frame: pd.DataFrame, mapped: np.ndarray) -> pd.DataFrame:
    """``frame`` with each column that views the mapped file made writable.

    Arrow hands out its buffers read-only; a step that writes into its input (``df.loc[m,
    "x"] = 0``) must be able to. The mapping is private copy-on-write, so the same memory seen
    through it is writable, and a write changes the step's own copy of a page, never the
    stored file. Other columns (text, nullable, categorical) are kept as pandas built them.
    """
    import numpy as np
    import pandas as pd

    start = mapped.__array_interface__["data"][0]
    end = start + mapped.nbytes
    arrays: dict[int, Any] = {}
    changed = False
    for position, dtype in enumerate(frame.dtypes):
        values = frame.iloc[:, position].array
        held = values.to_numpy() if isinstance(dtype, np.dtype) else getattr(values, "_ndarray",
                                                                               None)
        if not isinstance(held, np.ndarray) or held.flags.writeable:
            arrays[position] = values
            continue
        changed = True
        address = held.__array_interface__["data"][0]
        if (isinstance(dtype, np.dtype) and held.ndim == 1 and held.flags.c_contiguous
                and start <= address and address + held.nbytes <= end):
            arrays[position] = np.ndarray(held.shape, held.dtype, buffer=mapped,
                                          offset=address - start)
        else:  # categorical codes, zoned times: small, and pandas writes into them in place
            arrays[position] = values.copy()
    if not changed:
        return frame
    rebuilt = pd.DataFrame(arrays, index=frame.index, copy=False)
    rebuilt.columns = frame.columns
    rebuilt.attrs = dict(frame.attrs)
    return rebuilt


def release_pages(values: Any) -> None:
    """Hand back the memory of ``values``, an array viewing a loaded frame's mapped file, once
    it has been read: its pages stay in the system's page cache, and are mapped again if read
    again. A step that reads a column once (to copy rows out of it) then holds only its copy.

    A page the process wrote to holds changes the file does not have: if any page of the range
    was written, or the system cannot tell (``/proc/self/pagemap``), nothing is released.
    Anything else than a contiguous view of a mapped artifact is left alone.
    """
    import mmap

    import numpy as np

    base = values
    while base is not None and not isinstance(base, np.memmap):
        base = getattr(base, "base", None)
    handle = getattr(base, "_mmap", None)
    if (handle is None or not isinstance(values, np.ndarray) or not values.flags.contiguous
            or not hasattr(mmap, "MADV_DONTNEED")):
        return
    page = mmap.PAGESIZE
    start = np.frombuffer(handle, dtype=np.uint8).__array_interface__["data"][0]
    address = values.__array_interface__["data"][0]
    low = (address - start) // page * page
    high = min(-(-(address - start + values.nbytes) // page) * page, len(handle))
    if low < 0 or high <= low or _written(start + low, start + high):
        return
    handle.madvise(mmap.MADV_DONTNEED, low, high - low)


def _written(low: int, high: int) -> bool:
    """Whether a page in ``[low, high)`` of this process's memory was written (or swapped)."""
    import mmap

    import numpy as np

    page = mmap.PAGESIZE
    count = (high - low) // page
    try:
        with open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
            pagemap.seek(low // page * 8)
            entries = np.frombuffer(pagemap.read(count * 8), dtype=np.uint64)
    except OSError:
        return True
    if len(entries) != count:
        return True
    present = (entries >> np.uint64(63)) & np.uint64(1)
    swapped = (entries >> np.uint64(62)) & np.uint64(1)
    from_file = (entries >> np.uint64(61)) & np.uint64(1)
    # A private mapping's page is the file's until written: then it is the process's own.
    return bool(np.any(swapped) or np.any(present & (from_file ^ np.uint64(1))))


@dataclass(frozen=True)
class ArrowFrameMaterializer:
    """DataFrames and Series as ``data.arrow`` (Arrow IPC file, uncompressed)."""

    name: str = "pandas"
    version: int = 2
    files: frozenset[str] = frozenset({"data.arrow", SERIES_MARK})

    def can_handle(self, value: Any) -> bool:
        return _is_frame_or_series(value)

    def save(self, value: Any, directory: Path) -> list[str]:
        import pyarrow as pa

        frame, series = _as_frame(value)
        table = _canonical_table(frame)
        del frame
        options = pa.ipc.IpcWriteOptions(compression=None)
        with pa.OSFile(str(directory / "data.arrow"), "wb") as sink, \
                pa.ipc.new_file(sink, table.schema, options=options) as writer:
            writer.write_table(table)
        del table
        _release_pool()
        if series:
            (directory / SERIES_MARK).write_text("1", encoding="utf-8")
            return ["data.arrow", SERIES_MARK]
        return ["data.arrow"]

    def load(self, directory: Path) -> Any:
        import numpy as np
        import pyarrow as pa

        _release_pool()
        # Private copy-on-write mapping, as for numpy arrays: pages come from the page cache as
        # they are touched.
        mapped = np.memmap(directory / "data.arrow", mode="c")
        table = pa.ipc.open_file(pa.py_buffer(mapped)).read_all()
        # Offsets and lengths inside every column are checked before anything reads through
        # them (a crafted offset would make pandas read outside the file).
        table.validate(full=True)
        frame = _writable(table.to_pandas(split_blocks=True), mapped)
        del table
        if (directory / SERIES_MARK).exists():
            return frame.iloc[:, 0]
        return frame


@dataclass(frozen=True)
class ParquetFrameMaterializer:
    """DataFrames stored as Parquet by zenml-collab before the Arrow format; read only."""

    name: str = "pandas"
    version: int = 1
    files: frozenset[str] = frozenset({"data.parquet", SERIES_MARK})

    def can_handle(self, value: Any) -> bool:
        return False

    def save(self, value: Any, directory: Path) -> list[str]:
        raise MaterializerError("DataFrames are no longer stored as Parquet", None)

    def load(self, directory: Path) -> Any:
        import pandas as pd

        frame = pd.read_parquet(directory / "data.parquet", engine="pyarrow")
        if (directory / SERIES_MARK).exists():
            return frame.iloc[:, 0]
        return frame
