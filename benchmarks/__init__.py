"""Benchmarks of zenml-collab: run them with ``scripts/bench`` (see ``python -m benchmarks -h``).

Each ``bench_*`` module is one section returning :class:`benchmarks.harness.Figure` values;
``targets.py`` holds the goals they are checked against, ``report.py`` the output formats.
"""
