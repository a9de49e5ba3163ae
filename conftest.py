"""Test-session settings shared by the unit tests and the lesson notebooks."""

import os

# Lessons read MINIDEEP_FAST to train on smaller data for fewer steps; the test suite
# always runs them that way (nbmake kernels inherit this environment).
os.environ.setdefault("MINIDEEP_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
