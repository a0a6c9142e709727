"""docs/reliability.md shows exactly the rows the fault-matrix tests prove."""

from __future__ import annotations

from reliability.matrix import collect, documented, render


def test_reliability_doc_matches_the_fault_matrix() -> None:
    rows = collect()
    assert rows, "the fault matrix has no rows"
    assert documented() == render(rows), (
        "docs/reliability.md is out of date: paste the output of "
        "`python tests/reliability/matrix.py` between its markers")
