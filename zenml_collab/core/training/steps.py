"""The standard steps of a :class:`TrainingPipeline`, configured like ZenML's.

Data flows as pandas DataFrames; the split is a column (``SPLIT_COLUMN``, categorical: the split
names are its categories) so a single, content-addressed artifact holds every split. Each step
works one column at a time and never copies a whole frame: its inputs are mapped from the
artifact store, and only the pages a step reads are ever loaded.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from zenml_collab.core.step import BaseStep
from zenml_collab.errors import ConfigError

SPLIT_COLUMN = "__split__"


def _read_source(path: str) -> bytes:
    if path.startswith("gs://"):
        from zenml_collab.core.artifacts.gcs import read_object

        return read_object(path)
    from zenml_collab.core.training.sources import read_local_source

    return read_local_source(path)


def _source_for_arrow(path: str) -> tuple[bytes | Path, bytes]:
    """What the CSV reader parses: a bucket object's bytes, or a local file's checked path and
    its first bytes."""
    if path.startswith("gs://"):
        return _read_source(path), b""
    from zenml_collab.core.training.csv_read import HEAD_BYTES
    from zenml_collab.core.training.sources import local_source_head

    return local_source_head(path, HEAD_BYTES)


class CSVDatasource(BaseStep):
    """Reads a CSV file (local path or ``gs://``) into an immutable snapshot (a DataFrame
    artifact: an Arrow file in the team's store).

    The snapshot's cache key includes the file's content, so an unchanged file is read once
    for the whole team and a changed file makes a new snapshot and re-runs everything after it.
    """

    def __init__(self, name: str, path: str, **read_csv: Any) -> None:
        super().__init__(name=name, path=path, **read_csv)

    def fingerprint(self) -> str:
        from zenml_collab.core.hashing import hash_bytes

        path = self.params["path"]
        if path.startswith("gs://"):
            from zenml_collab.core.artifacts.gcs import object_fingerprint

            return object_fingerprint(path)
        return hash_bytes(_read_source(path))

    def run(self) -> Any:
        import io

        import pandas as pd

        options = {k: v for k, v in self.params.items() if k not in ("name", "path")}
        path = self.params["path"]
        frame = None
        if not options:
            from zenml_collab.core.training.csv_read import read_csv_table, table_to_frame

            # One pyarrow pass checks the rows and converts, when pandas would read the same;
            # a local file is parsed from the file, not from a copy of it in memory.
            source, head = _source_for_arrow(path)
            table = read_csv_table(source, path, head)
            del source
            if table is not None:
                frame = table_to_frame(table)
                del table
        if frame is None:
            raw = _read_source(path)
            check_ragged_rows(raw, path, options)
            try:
                frame = pd.read_csv(io.BytesIO(raw), **options)
            except (ValueError, pd.errors.ParserError) as exc:
                raise ConfigError(f"cannot parse {path!r} as CSV: {exc}",
                                  "check the file, or pass read_csv options to CSVDatasource"
                                  ) from None
        if frame.empty:
            raise ConfigError(f"datasource {path!r} has no rows",
                              "point the datasource at a CSV file with a header and data")
        return frame


def check_ragged_rows(raw: bytes, path: str, options: dict[str, Any]) -> None:
    """Refuse a CSV with a row of more or fewer fields than its header, naming file and line.

    pandas accepts both silently (a short row is padded with NaN; a long first row turns the
    first column into the index). pyarrow's parser checks every row in C++, reading each field as
    text (no type inference to trip over); only a bad row reaches Python. Files read with other
    options than a delimiter are left to pandas, which then decides how to read them.
    """
    import pyarrow as pa
    import pyarrow.csv as pc

    if set(options) - {"sep", "delimiter"} or not raw.strip():
        return
    delimiter = str(options.get("sep") or options.get("delimiter") or ",")
    if len(delimiter) != 1:
        return
    first = raw.split(b"\n", 1)[0]
    bad: list[Any] = []

    def on_bad_row(row: Any) -> str:
        bad.append(row)
        return "error"

    try:
        header = pc.read_csv(pa.py_buffer(first + b"\n"),
                             parse_options=pc.ParseOptions(delimiter=delimiter)).column_names
        pc.read_csv(pa.py_buffer(raw),
                    parse_options=pc.ParseOptions(delimiter=delimiter,
                                                  invalid_row_handler=on_bad_row),
                    convert_options=pc.ConvertOptions(
                        column_types=dict.fromkeys(header, pa.string())))
    except pa.ArrowInvalid:
        if not bad:
            return  # not a row-length problem: pandas reports it in its own words
    if not bad:
        return
    from zenml_collab.core.training.csv_read import ragged_row_error

    raise ragged_row_error(raw, path, bad[0])


class RandomSplit(BaseStep):
    """Assigns each row to a split at random, reproducibly (``seed``): ``SPLIT_COLUMN`` is
    added to the data, a categorical whose categories are the names of ``split_map``.

    Besides the data (``output``) it stores the data views of the splits, computed while the
    data is in memory: ``schema`` (inferred from ``train``, else the first split),
    ``statistics`` (every split) and ``anomalies`` (every other split against that one), so
    ``view_*`` and ``collab show`` only read them.
    """

    OUTPUTS = ("output", "schema", "statistics", "anomalies")

    def __init__(self, split_map: dict[str, float], seed: int = 42) -> None:
        if not split_map or any(not isinstance(v, (int, float)) or v <= 0
                                for v in split_map.values()):
            raise ConfigError(f"invalid split_map {split_map!r}",
                              "give positive fractions, e.g. {'train': 0.7, 'eval': 0.3}")
        if abs(sum(split_map.values()) - 1.0) > 1e-6:
            raise ConfigError(f"split_map fractions sum to {sum(split_map.values()):g}, not 1",
                              "e.g. {'train': 0.7, 'eval': 0.3}")
        super().__init__(split_map=split_map, seed=seed)

    def run(self, data: Any) -> Any:
        import numpy as np

        names = list(self.params["split_map"])
        weights = np.array([self.params["split_map"][n] for n in names], dtype=float)
        rng = np.random.default_rng(self.params["seed"])
        # Exact proportions (not a coin per row): a permutation cut at cumulative fractions.
        order = rng.permutation(len(data))
        cuts = np.round(np.cumsum(weights) * len(data)).astype(int)
        codes = np.empty(len(data), dtype=np.int8 if len(names) < 128 else np.intp)
        start = 0
        for position, end in enumerate(cuts):
            codes[order[start:end]] = position
            start = end
        del order
        import pandas as pd

        # A category per row (one byte each), not the name as text: every later step keeps
        # this column beside its data, and compares it with a split's name.
        labels = pd.Categorical.from_codes(codes, categories=names)
        del codes
        # Copy-on-write (pandas >= 3): adding a column leaves ``data`` as it was, no deep copy.
        out = data.copy(deep=False)
        out[SPLIT_COLUMN] = labels
        from zenml_collab.core.analysis.views import compute_data_views, default_baseline

        sizes = np.diff(np.concatenate(([0], cuts)))
        present = [name for name, size in zip(names, sizes, strict=True) if size > 0]
        views = compute_data_views(out, split_column=SPLIT_COLUMN,
                                   baseline=default_baseline(present))
        return {"output": out, "schema": views.schema_dict(),
                "statistics": views.statistics_dict(), "anomalies": views.anomalies_dict()}


class StandardPreprocesser(BaseStep):
    """Standardises numeric features and one-hot encodes categorical ones, fitted on train."""

    OUTPUTS = ("features", "labels")

    def __init__(self, features: list[str], labels: list[str], train_split: str = "train",
                 overwrite: dict[str, Any] | None = None) -> None:
        if not features or not labels:
            raise ConfigError("StandardPreprocesser needs features=[...] and labels=[...]",
                              "name the input columns and the label column(s)")
        super().__init__(features=list(features), labels=list(labels), train_split=train_split,
                         **({"overwrite": overwrite} if overwrite else {}))

    def run(self, data: Any) -> Any:
        import numpy as np
        import pandas as pd

        features, labels = self.params["features"], self.params["labels"]
        missing = [c for c in [*features, *labels] if c not in data.columns]
        if missing:
            raise ConfigError(f"columns {missing} are not in the data",
                              f"the data has: {', '.join(c for c in data.columns if c != SPLIT_COLUMN)}")
        # A row mask, not a copy of the train rows: each column is cut when it is fitted.
        in_train = (data[SPLIT_COLUMN] == self.params["train_split"]).to_numpy(dtype=bool)
        if not in_train.any():
            raise ConfigError(f"split {self.params['train_split']!r} is empty",
                              "check the split_map of the split step")
        from zenml_collab.core.artifacts.frames import release_pages

        # Columns are computed one at a time into arrays the output frame then takes as they
        # are (assigning an array to a frame's column copies it); an input column, once read,
        # is handed back.
        columns: dict[str, Any] = {}
        for column in features:
            series = data[column]
            # The train values without their index (a masked index is a copy of its own).
            fitted = pd.Series(series.array[in_train], name=column, copy=False)
            if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
                mean, std = fitted.mean(), fitted.std(ddof=0)
                # (x - mean) / std in place on one copy: the same arithmetic, no temporaries.
                scaled = series.fillna(mean).to_numpy(dtype=float, copy=True)
                np.subtract(scaled, mean, out=scaled)
                np.divide(scaled, std if std else 1.0, out=scaled)
                columns[column] = scaled
                if isinstance(series.dtype, np.dtype):
                    release_pages(series.to_numpy())
            else:
                # Each row's text as a code (one hash pass), then a comparison of small ints
                # per value; a missing value has no code and matches none.
                codes, uniques = pd.factorize(series.astype(str))
                code_of = {str(value): code for code, value in enumerate(uniques)}
                for value in sorted(fitted.dropna().astype(str).unique()):
                    columns[f"{column}={value}"] = (codes == code_of[value]).astype(float)
            del series, fitted
        columns[SPLIT_COLUMN] = data[SPLIT_COLUMN].array
        out = pd.DataFrame(columns, index=data.index, copy=False)
        # No copy: the labels as the split stored them, beside their split.
        label_frame = data[[*labels, SPLIT_COLUMN]]
        return out, label_frame


def resolve_estimator(model: str) -> Any:
    """``'RandomForestClassifier'`` or ``'sklearn.linear_model:LogisticRegression'``."""
    from sklearn.utils import all_estimators

    if ":" in model or "." in model:
        module, _, name = model.replace(":", ".").rpartition(".")
        # The name comes from a committed config: importing a module runs it, so only
        # scikit-learn's own modules and the repository's code may be named.
        from zenml_collab.core.training.sources import is_repository_module

        if module.split(".", 1)[0] != "sklearn" and not is_repository_module(module):
            raise ConfigError(
                f"estimator {model!r} is neither in scikit-learn nor in this repository",
                "use a scikit-learn class ('sklearn.svm:SVC') or one defined in the repository")
        try:
            found = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            raise ConfigError(f"cannot import estimator {model!r}",
                              "use an import path like 'sklearn.svm:SVC'") from None
        from sklearn.base import BaseEstimator

        if not (isinstance(found, type) and issubclass(found, BaseEstimator)):
            raise ConfigError(f"{model!r} is not a scikit-learn estimator class",
                              "name a class deriving from sklearn.base.BaseEstimator")
        return found
    known = dict(all_estimators())
    if model not in known:
        close = [n for n in known if n.lower().startswith(model.lower()[:6])][:5]
        raise ConfigError(f"unknown scikit-learn estimator {model!r}",
                          f"use a class name such as {', '.join(close) or 'LogisticRegression'}")
    return known[model]


def _rows_of(frame: Any, rows: Any) -> Any:
    """``frame.drop(columns=[SPLIT_COLUMN]).to_numpy()[rows]``: the values at the rows of mask
    ``rows``, same dtype, C order, filled one column at a time (neither the whole frame nor its
    row copy is ever held beside the result)."""
    import numpy as np

    kept = [i for i, name in enumerate(frame.columns) if name != SPLIT_COLUMN]
    dtypes = [frame.dtypes.iloc[i] for i in kept]
    # The dtype pandas gives the whole frame, found on no rows.
    dtype = frame.iloc[:0, kept].to_numpy().dtype
    if not kept or dtype.kind not in "biuf" or not all(isinstance(d, np.dtype) for d in dtypes):
        return frame.drop(columns=[SPLIT_COLUMN]).to_numpy()[rows]
    from zenml_collab.core.artifacts.frames import release_pages

    out = np.empty((int(np.count_nonzero(rows)), len(kept)), dtype=dtype)
    for position, index in enumerate(kept):
        column = frame.iloc[:, index].to_numpy()
        out[:, position] = column[rows]
        release_pages(column)  # read once: the copy is all the step holds from here on
    return out


class SklearnTrainer(BaseStep):
    """Fits any scikit-learn estimator on the train split."""

    def __init__(self, model: str = "LogisticRegression", train_split: str = "train",
                 **params: Any) -> None:
        super().__init__(model=model, train_split=train_split, **params)

    def run(self, features: Any, labels: Any) -> Any:
        estimator_cls = resolve_estimator(self.params["model"])
        params = {k: v for k, v in self.params.items() if k not in ("model", "train_split")}
        try:
            estimator = estimator_cls(**params)
        except TypeError as exc:
            raise ConfigError(f"{self.params['model']}: {exc}",
                              "check the trainer's parameters against scikit-learn's docs") from None
        rows = (features[SPLIT_COLUMN] == self.params["train_split"]).to_numpy(dtype=bool)
        x = _rows_of(features, rows)
        y = _rows_of(labels, rows)
        y = y[:, 0] if y.shape[1] == 1 else y
        estimator.fit(x, y)
        return estimator


class Evaluator(BaseStep):
    """Metrics of the trained model on the eval split, overall and per slice."""

    def __init__(self, metrics: list[str] | None = None, slices: list[Any] | None = None,
                 split: str = "eval") -> None:
        flat = [s[0] if isinstance(s, (list, tuple)) and len(s) == 1 else s for s in slices or []]
        if any(not isinstance(s, str) for s in flat):
            raise ConfigError(f"invalid slices {slices!r}",
                              "give column names, e.g. slices=['clinic'] or [['clinic']]")
        super().__init__(metrics=list(metrics) if metrics else None, slices=flat, split=split)

    def run(self, model: Any, features: Any, labels: Any, data: Any) -> Any:
        from sklearn.base import is_classifier

        from zenml_collab.core.analysis.evaluation import evaluate

        rows = features[SPLIT_COLUMN] == self.params["split"]
        if not rows.any():
            raise ConfigError(f"split {self.params['split']!r} is empty",
                              "check the split step's split_map")
        x = _rows_of(features, rows.to_numpy(dtype=bool))
        y = _rows_of(labels, rows.to_numpy(dtype=bool))[:, 0]
        classifier = is_classifier(model)
        score = None
        if classifier and hasattr(model, "predict_proba") and len(getattr(model, "classes_", [])) == 2:
            score = model.predict_proba(x)[:, 1]
        wanted = self.params["slices"]
        # Only the slice columns' eval rows (a missing column: the whole frame, for the error
        # that lists what there is).
        columns = (list(dict.fromkeys(wanted)) if all(c in data.columns for c in wanted)
                   else list(data.columns))
        result = evaluate(y, model.predict(x), score,
                          task="classification" if classifier else "regression",
                          metrics=self.params["metrics"],
                          slices=data.loc[rows, columns] if wanted else None,
                          slice_columns=wanted or None)
        return result.to_dict()
