"""Shared facts about the template: its features and the valid combinations of them."""

import itertools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEATURES = ("use_stream", "use_fetch", "use_websocket", "use_js_client")
ENDPOINTS = ("use_stream", "use_fetch", "use_websocket")


def feature_combinations() -> list[dict[str, bool]]:
    """Every combination of the feature booleans that the pre-gen hook accepts."""
    combinations = (dict(zip(FEATURES, values, strict=True)) for values in itertools.product([True, False], repeat=4))
    return [c for c in combinations if any(c[name] for name in ENDPOINTS)]


def combination_id(context: dict[str, bool]) -> str:
    """A readable test id such as 'stream+websocket+js_client'."""
    return "+".join(name.removeprefix("use_") for name in FEATURES if context[name])
