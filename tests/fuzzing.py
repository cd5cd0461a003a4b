"""Hypothesis settings shared by the property and fuzz tests (tests/property)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SCALE = int(os.environ.get("WORDCONV_FUZZ_SCALE", "1"))


def fuzz_settings(max_examples: int) -> settings:
    """Explicit settings: ``max_examples`` (times WORDCONV_FUZZ_SCALE), deterministic unless scaled up."""
    return settings(
        max_examples=max_examples * SCALE,
        deadline=None,
        derandomize=SCALE == 1,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
