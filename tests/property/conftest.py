"""Hypothesis profiles for the property tests (CPython only: tests/unit is the portable tier).

    ci       (default) derandomized: every run tries the same examples, so a failure in CI
             reproduces locally with the same command; failures print a reproduce blob.
    explore  random seeds and twenty times the examples (budget.py), for a long local run:
             HYPOTHESIS_PROFILE=explore .venv/bin/python -m pytest -q tests/property
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "explore", deadline=None, print_blob=True, max_examples=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
