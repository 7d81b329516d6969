"""Example budgets: the CI budget by default, twenty times more under
HYPOTHESIS_PROFILE=explore (with random seeds, see conftest.py)."""
import os

SCALE = 20 if os.environ.get("HYPOTHESIS_PROFILE") == "explore" else 1


def examples(n):
    return n * SCALE
