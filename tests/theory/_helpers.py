from __future__ import annotations

from pathlib import Path
from typing import Any

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_pngs(result: dict[str, Any], out_dir: Path) -> None:
    assert result["figures"], "every result writes a figure"
    for path in result["figures"]:
        path = Path(path)
        assert path.parent == out_dir and path.read_bytes()[:8] == PNG_MAGIC
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")], "no temporary files left"


def checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in result["checks"]}
