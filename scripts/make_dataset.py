#!/usr/bin/env python3
"""Generate ``zenml_collab/data/diabetes.csv``, the small data set the quickstart and tests use.

The data is synthetic but shaped like the Pima Indians diabetes data the ZenML guide uses: the
same eight clinical measurements with realistic ranges, skew and correlations (older women have
had more pregnancies, heavier people have thicker skin folds, high glucose comes with high
insulin), one categorical ``clinic`` column to slice evaluations by, and a binary label
``has_diabetes`` drawn from a logistic model of glucose, BMI, age, pedigree and pregnancies, so a
classifier learns something real (ROC AUC around 0.8, about a third positive, as in the original).

Deterministic: the same seed always writes the same bytes, so the committed CSV can be checked
against a fresh run (``python scripts/make_dataset.py --check``).

Usage::

    python scripts/make_dataset.py            # (re)write the CSV
    python scripts/make_dataset.py --check    # exit 1 if the committed CSV differs
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20_240_605
ROWS = 768
OUT = Path(__file__).resolve().parent.parent / "zenml_collab" / "data" / "diabetes.csv"

# Clinics differ a little in who they see (older patients in "harbor", younger in "campus"),
# which makes per-clinic evaluation slices differ for a reason a reader can explain.
CLINICS = ("north", "south", "harbor", "campus")
CLINIC_WEIGHTS = (0.35, 0.30, 0.20, 0.15)
CLINIC_AGE_SHIFT = {"north": 0.0, "south": 1.0, "harbor": 7.0, "campus": -4.0}


def _bounded(rng: np.random.Generator, values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Redraw values outside [low, high] uniformly inside it.

    Clipping would pile values up at the bounds (a spike no real measurement has); a redraw keeps
    the tails thin.
    """
    out = values.copy()
    bad = (out < low) | (out > high)
    out[bad] = rng.uniform(low, high, bad.sum())
    return out


def make_frame(seed: int = SEED, rows: int = ROWS) -> pd.DataFrame:
    """Return the data set as a DataFrame (columns in CSV order)."""
    rng = np.random.default_rng(seed)
    clinic = rng.choice(np.array(CLINICS), size=rows, p=CLINIC_WEIGHTS)
    shift = np.array([CLINIC_AGE_SHIFT[c] for c in clinic])

    # Age: right-skewed from 21 (the original's minimum), median near 29.
    age = 21 + rng.gamma(shape=1.6, scale=7.5, size=rows) + shift
    age = np.round(_bounded(rng, age, 21, 81)).astype(int)

    # Pregnancies grow with age; negative binomial gives the long tail of the original (max 17).
    mean_preg = 1.2 + 0.16 * (age - 21)
    pregnancies = rng.negative_binomial(n=3, p=3 / (3 + mean_preg))
    pregnancies = np.minimum(pregnancies, 17)

    bmi = _bounded(rng, rng.normal(32.3, 6.8, rows), 18.2, 67.1)
    pedigree = _bounded(rng, rng.lognormal(mean=np.log(0.38), sigma=0.62, size=rows), 0.078, 2.42)

    # A latent "metabolic risk" drives glucose and (through glucose) insulin and the label.
    risk = rng.normal(0, 1, rows) + 0.04 * (bmi - 32) + 0.02 * (age - 33)
    glucose = _bounded(rng, 119 + 27 * risk + rng.normal(0, 12, rows), 44, 199)
    blood_pressure = _bounded(
        rng, 69 + 0.25 * (age - 33) + 0.3 * (bmi - 32) + rng.normal(0, 11, rows), 24, 122
    )
    skin = _bounded(rng, 29 + 0.9 * (bmi - 32) + rng.normal(0, 8, rows), 7, 99)
    insulin = _bounded(
        rng, np.exp(4.8 + 0.008 * (glucose - 120) + rng.normal(0, 0.55, rows)), 14, 846
    )

    logit = (
        -3.4
        + 0.034 * (glucose - 100)
        + 0.085 * (bmi - 25)
        + 0.9 * pedigree
        + 0.025 * (age - 21)
        + 0.08 * pregnancies
    )
    has_diabetes = (rng.uniform(0, 1, rows) < 1 / (1 + np.exp(-logit))).astype(int)

    return pd.DataFrame(
        {
            "pregnancies": pregnancies.astype(int),
            "glucose": np.round(glucose).astype(int),
            "blood_pressure": np.round(blood_pressure).astype(int),
            "skin_thickness": np.round(skin).astype(int),
            "insulin": np.round(insulin).astype(int),
            "bmi": np.round(bmi, 1),
            "diabetes_pedigree": np.round(pedigree, 3),
            "age": age,
            "clinic": clinic,
            "has_diabetes": has_diabetes,
        }
    )


def to_csv_text(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed CSV")
    parser.add_argument("--out", type=Path, default=OUT, help=f"output path (default {OUT})")
    args = parser.parse_args(argv)

    text = to_csv_text(make_frame())
    if args.check:
        same = args.out.exists() and args.out.read_text() == text
        print(f"{args.out}: {'up to date' if same else 'differs from a fresh run'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
