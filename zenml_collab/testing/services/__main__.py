"""``python -m zenml_collab.testing.services start|stop|env DIR``."""

from zenml_collab.testing.services import main

raise SystemExit(main())
