"""Moved to :mod:`zenml_collab.google.errors`, the one classifier of Google errors shared by
``core`` and ``infra``; this name stays so existing imports keep working."""

from zenml_collab.google.errors import (
    GoogleErrorInfo,
    NotFoundError,
    ServiceDisabledError,
    classify,
    inspect,
    is_service_disabled,
    named_permission,
    translate,
)

__all__ = ["GoogleErrorInfo", "NotFoundError", "ServiceDisabledError", "classify", "inspect",
           "is_service_disabled", "named_permission", "translate"]
