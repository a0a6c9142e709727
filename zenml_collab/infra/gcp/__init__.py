"""The Google Cloud client layer shared by ``bootstrap``, ``join`` and ``doctor``.

One module per API (``sqladmin``, ``projects``, ``services``, ``buckets``) plus ``credentials``,
``endpoints``, ``errors`` (Google exceptions -> :mod:`zenml_collab.errors`), ``retry`` and
``permissions`` (the roles and permissions tables). Google libraries are imported lazily inside
functions so importing this package stays cheap.
"""
