"""How the benchmark and evaluation scripts write their results: OUT.json beside OUT.md."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_report(out: Path, results: Any, render: Callable[[Any], str]) -> None:
    """Write `results` as OUT.json and its rendering as OUT.md, and print the rendering."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    text = render(results)
    out.with_suffix(".md").write_text(text)
    print(text)
