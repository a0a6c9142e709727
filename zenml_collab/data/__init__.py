"""Data sets shipped with zenml-collab.

``diabetes.csv`` is a 768-row binary-classification set shaped like the Pima Indians diabetes
data (eight clinical measurements, a ``clinic`` column to slice by, label ``has_diabetes``),
generated deterministically by ``scripts/make_dataset.py``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

DIABETES_LABEL = "has_diabetes"
"""Name of the label column of the diabetes data set."""


def diabetes_csv_path() -> Path:
    """Return the path of the shipped ``diabetes.csv`` (inside the installed package)."""
    return Path(str(resources.files(__package__).joinpath("diabetes.csv")))


def load_diabetes() -> pd.DataFrame:
    """Return the shipped diabetes data set as a DataFrame (768 rows, 10 columns)."""
    import pandas as pd

    return pd.read_csv(diabetes_csv_path())
