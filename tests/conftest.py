"""Shared fixtures: spec loading from text, and the torch reference figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archcalc import load_text
from archcalc.passes.analysis import Analysis, analyze

REFERENCE = Path(__file__).parent / "reference" / "torch_reference.json"


def analyze_text(text: str, filename: str = "t.arch") -> Analysis:
    return analyze(load_text(text, filename))


@pytest.fixture(scope="session")
def torch_reference() -> dict:
    return json.loads(REFERENCE.read_text())
