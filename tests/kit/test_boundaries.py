"""The layering the design rests on: the kit imports no service, and no service imports another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"
NAMES = ("issues", "scoring", "media")


def _imports(folder: Path) -> list[tuple[Path, str]]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [(path, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.module))
    return found


def test_the_kit_imports_nothing_from_a_service() -> None:
    imports = _imports(SERVICES / "kit")
    assert imports, "the scan found no imports at all"
    assert [(p.name, m) for p, m in imports if m.split(".")[:2] in (["services", n] for n in NAMES)] == []


@pytest.mark.parametrize("service", NAMES)
def test_a_service_imports_no_other_service(service: str) -> None:
    others = {f"services.{n}" for n in NAMES if n != service}
    imports = _imports(SERVICES / service)
    assert [(p.name, m) for p, m in imports if ".".join(m.split(".")[:2]) in others] == []
