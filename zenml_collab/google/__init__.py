"""The Google access layer, below both ``core`` and ``infra``: credentials, endpoints, the retry
policy, client construction (:mod:`.access`) and the one classifier of Google errors
(:mod:`.errors`). Nothing here imports ``core``, ``infra`` or ``actions``; Google libraries are
imported lazily so ``import zenml_collab`` stays light.
"""
