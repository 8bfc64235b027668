"""``python -m darkyolo`` (also what ``torchrun -m darkyolo train ...`` runs)."""

from darkyolo.cli import main

raise SystemExit(main())
