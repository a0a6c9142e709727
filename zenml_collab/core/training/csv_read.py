"""Read a plain CSV in one pass with pyarrow, when the result is what pandas would give.

``CSVDatasource`` used to parse each file twice: pyarrow read every field as text to find rows
of the wrong length (pandas accepts them silently), then pandas' C parser read it again. For a
file read without options, one typed pyarrow pass does both: its parser checks every row's
length as it converts (several threads, several times faster than pandas' parser), and the
table becomes the same DataFrame pandas would build, provided every column came out as a type
both libraries read the same way:

* int64 and double: the text parsed as numbers by both, nulls from the same NA spellings
  (``NA_VALUES``); an int column with nulls becomes float64 with NaN in both. A double column
  of whole numbers only is left to pandas: its text had a form pyarrow's int parser refused
  (``+1``, an integer beyond int64) that pandas reads as int64, uint64 or text;
* string: unless a value has surrounding whitespace (pandas may read ``" 1"`` as a number).

A column whose text turns non-numeric only after a few hundred thousand rows becomes text,
where pandas' chunked parser gives a mix of numbers and strings (with a ``DtypeWarning``) that
the snapshot could not store anyway.

Anything else (dates and times, which pandas keeps as text; booleans; all-empty columns;
duplicate or empty header names; a byte-order mark; a value that does not convert like the
first block of its column) returns ``None`` and the caller reads the file with pandas as
before, so a file never changes meaning for being read fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from zenml_collab.errors import ConfigError

__all__ = ["NA_VALUES", "ragged_row_error", "read_csv_fast", "read_csv_table", "table_to_frame"]

NA_VALUES = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
             "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
"""pandas' default ``na_values`` (``pandas._libs.parsers.STR_NA_VALUES``)."""


def ragged_row_error(raw: bytes, path: str, row: Any) -> ConfigError:
    """The error naming the file, line and field counts of pyarrow's invalid ``row``."""
    from zenml_collab.errors import ConfigError

    text = row.text.encode("utf-8", "replace")
    found = [raw.find(b"\n" + text + end) for end in (b"\n", b"\r\n")]
    if raw.endswith(b"\n" + text):
        found.append(len(raw) - len(text) - 1)
    at = min((f for f in found if f >= 0), default=-1)
    line = raw.count(b"\n", 0, at + 1) + 1 if at >= 0 else None
    where = f"line {line}" if line else "a row"
    return ConfigError(
        f"{path}: {where} has {row.actual_columns} field(s), the header has "
        f"{row.expected_columns}: {row.text[:80]!r}",
        "every row needs one value per column (leave a missing value empty: a,,c); fix or "
        "remove the row")


def read_csv_fast(raw: bytes, path: str) -> pd.DataFrame | None:
    """The DataFrame ``pandas.read_csv`` would give for ``raw``, or ``None`` if unsure.

    Raises :class:`~zenml_collab.errors.ConfigError` for a row with more or fewer fields than
    the header, as :func:`~zenml_collab.core.training.steps.check_ragged_rows` does.
    """
    table = read_csv_table(raw, path)
    return None if table is None else table_to_frame(table)


def table_to_frame(table: pa.Table) -> pd.DataFrame:
    """The DataFrame of a table from :func:`read_csv_table`; the table is consumed.

    Each column's Arrow memory is released as soon as the column is converted, and returned to
    the system after, so the data is held about once, not twice. The caller must not use the
    table afterwards (pass the only reference and drop it).
    """
    import pyarrow as pa

    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    pa.default_memory_pool().release_unused()
    return frame


HEAD_BYTES = 1 << 16
"""Of a file read by path, the bytes looked at first: a file no longer than this is parsed from
memory; a longer one is parsed from the file, never held whole beside its table."""


def read_csv_table(source: bytes | Path, path: str, head: bytes = b"") -> pa.Table | None:
    """The Arrow table of the CSV ``source`` (its bytes, or a checked local file whose first
    bytes are ``head``) when its DataFrame is what ``pandas.read_csv`` would give (see
    :func:`read_csv_fast`), else ``None``. Convert it with :func:`table_to_frame`."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    if isinstance(source, Path) and len(head) < HEAD_BYTES:
        source = head  # the whole file
    start = source if isinstance(source, bytes) else head
    if (isinstance(source, bytes) and not source.strip()) or start.startswith(b"\xef\xbb\xbf"):
        return None
    bad: list[Any] = []

    def on_bad_row(row: Any) -> str:
        bad.append(row)
        return "error"

    try:
        with (pa.BufferReader(source) if isinstance(source, bytes)
              else pa.OSFile(str(source))) as stream:
            table = pcsv.read_csv(
                stream, parse_options=pcsv.ParseOptions(invalid_row_handler=on_bad_row),
                convert_options=pcsv.ConvertOptions(null_values=list(NA_VALUES),
                                                    strings_can_be_null=True))
    except pa.ArrowInvalid:
        if bad:
            raw = source if isinstance(source, bytes) else source.read_bytes()
            raise ragged_row_error(raw, path, bad[0]) from None
        return None  # a conversion pandas may do differently: let pandas read it
    finally:
        # The parser's working memory (about the table's size again), back to the system.
        pa.default_memory_pool().release_unused()
    names = table.column_names
    if len(set(names)) != len(names) or any(not name.strip() for name in names):
        return None  # pandas renames these ("a.1", "Unnamed: 0")
    for column in table.columns:
        kind = column.type
        if pa.types.is_int64(kind):
            continue
        if pa.types.is_float64(kind):
            # Whole numbers only: the text had a form pyarrow's int parser refused ("+1", an
            # integer beyond int64) that pandas may read as int64, uint64 or text.
            if pc.all(pc.equal(column, pc.trunc(column))).as_py():
                return None
            continue
        if not pa.types.is_string(kind):
            return None
        if column.null_count < len(column) and pc.any(
                pc.not_equal(column, pc.utf8_trim_whitespace(column))).as_py():
            return None
    return table
