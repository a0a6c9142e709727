"""Bounds checks of the index arrays inside a loaded scikit-learn model.

skops rebuilds a model's trees and neighbour indexes from arrays stored in the file, and
scikit-learn's Cython code indexes those arrays without bounds checks: a child index out of
range makes ``predict`` read outside the array (a segfault, or another object's memory), and
a child that points back at its parent makes it loop forever. A model from the shared store
is a teammate's bytes, so every such array is checked before the model is handed over.

Checked: ``sklearn.tree._tree.Tree`` (decision trees, forests, gradient boosting), the
histogram gradient boosting ``TreePredictor`` and the ``KDTree``/``BallTree`` of neighbour
models. Children must come after their parent (scikit-learn builds trees depth first), so a
path through a tree always ends.
"""

from __future__ import annotations

from typing import Any

from zenml_collab.errors import MaterializerError

_MAX_OBJECTS = 1_000_000


def _refuse(what: str) -> MaterializerError:
    return MaterializerError(
        f"the stored model is malformed: {what}; it was not loaded",
        "the artifact was written by a broken or hostile client; re-run the step that "
        "produced it")


def _check_children(left: Any, right: Any, n: int, where: str) -> None:
    import numpy as np

    index = np.arange(n)
    for side in (left, right):
        inner = side != -1
        if len(side) < n or np.any(side[:n][inner[:n]] <= index[inner[:n]]) \
                or np.any(side[:n][inner[:n]] >= n) or np.any(side[:n] < -1):
            raise _refuse(f"{where} has a child index out of range")
    if np.any((left[:n] == -1) != (right[:n] == -1)):
        raise _refuse(f"{where} has a node with one child")


def _check_tree(tree: Any) -> None:
    import numpy as np

    n = int(tree.node_count)
    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    _check_children(left, right, n, "a decision tree")
    inner = left[:n] != -1
    feature = np.asarray(tree.feature)[:n]
    if np.any(feature[inner] < 0) or np.any(feature[inner] >= int(tree.n_features)):
        raise _refuse("a decision tree splits on a feature it does not have")
    if np.asarray(tree.value).shape[0] < n:
        raise _refuse("a decision tree has fewer values than nodes")


def _check_predictor(predictor: Any) -> None:
    import numpy as np

    nodes = predictor.nodes
    n = len(nodes)
    leaf = nodes["is_leaf"].astype(bool)
    left = np.where(leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(leaf, -1, nodes["right"].astype(np.int64))
    _check_children(left, right, n, "a boosted tree")
    bitsets = len(getattr(predictor, "raw_left_cat_bitsets", ()))
    categorical = ~leaf & nodes["is_categorical"].astype(bool)
    if np.any(nodes["bitset_idx"][categorical] >= bitsets):
        raise _refuse("a boosted tree refers to a category set it does not have")


def _check_binary_tree(tree: Any) -> None:
    import numpy as np

    data, idx, node_data, _ = tree.get_arrays()
    if len(idx) and (np.min(idx) < 0 or np.max(idx) >= len(data)):
        raise _refuse("a neighbour index points outside its data")
    if len(node_data) and (np.any(node_data["idx_start"] < 0)
                           or np.any(node_data["idx_end"] > len(idx))
                           or np.any(node_data["idx_start"] > node_data["idx_end"])):
        raise _refuse("a neighbour index node points outside its index")


_CHECKS = {
    ("sklearn.tree._tree", "Tree"): _check_tree,
    ("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor"): _check_predictor,
    ("sklearn.neighbors._kd_tree", "KDTree"): _check_binary_tree,
    ("sklearn.neighbors._ball_tree", "BallTree"): _check_binary_tree,
}


def check_model(model: Any) -> None:
    """Raise :class:`MaterializerError` if an index array in ``model`` is out of bounds."""
    seen: set[int] = set()
    stack = [model]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
            continue
        seen.add(id(obj))
        if len(seen) > _MAX_OBJECTS:
            raise _refuse("it holds too many objects")
        kind = type(obj)
        check = _CHECKS.get((kind.__module__, kind.__name__))
        if check is not None:
            try:
                check(obj)
            except MaterializerError:
                raise
            except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                raise _refuse(f"{kind.__name__}: {type(exc).__name__}") from None
            continue
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif kind.__module__ == "numpy" and kind.__name__ == "ndarray":
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
        elif hasattr(obj, "__dict__") and kind.__module__.split(".", 1)[0] == "sklearn":
            stack.extend(vars(obj).values())
