"""``python -m fedla`` runs the command line (same as the ``fedla`` script)."""

from fedla.cli import main

raise SystemExit(main())
