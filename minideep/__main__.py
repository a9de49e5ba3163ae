"""``python -m minideep`` is the ``minideep`` command."""

import sys

from .cli import main

sys.exit(main())
