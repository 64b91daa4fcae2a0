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


# ---- the kit owns the identity model: roles, scopes and subjects are never spelled out in a service ----

ROLE_NAMES = {
    "admin",
    "inspector",
    "officer",
    "viewer",
    "village",
    "grid",
    "citizen",
    "integration",
    "service",
}
SCOPE_NAMES = {
    f"{area}:{verb}"
    for area in ("regions", "users", "clients", "issues", "scoring", "photos")
    for verb in ("read", "write", "verify", "accept", "original", "attach")
}


def _service_trees() -> list[Path]:
    return [path for name in NAMES for path in sorted((SERVICES / name).rglob("*.py"))]


def _literal_strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_no_service_defines_roles_or_scopes_of_its_own() -> None:
    found = []
    for path in _service_trees():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and node.name in ("Role", "Scope"):
                found.append((path.name, node.lineno, f"class {node.name}"))
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in ("ROLE_SCOPES", "ALL_SCOPES", "RANK")
                for t in node.targets
            ):
                found.append((path.name, node.lineno, "role table"))
    assert found == []


def test_no_service_compares_with_a_role_or_scope_spelled_by_hand() -> None:
    """`caller.role == "citizen"` or `require_scope("photos:read")` copies a rule the kit owns."""
    found = []
    for path in _service_trees():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Compare):
                spelled = set(_literal_strings(node)) & (ROLE_NAMES | SCOPE_NAMES)
            elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                "require_scope",
                "has",
            ):
                spelled = set(_literal_strings(node)) & SCOPE_NAMES
            else:
                continue
            found += [(path.name, node.lineno, s) for s in sorted(spelled)]
    assert found == []


def test_no_service_formats_or_parses_token_subjects_by_hand() -> None:
    found = []
    for path in _service_trees():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                head = node.values[0] if node.values else None
                if isinstance(head, ast.Constant) and str(head.value).startswith(("user:", "client:")):
                    found.append((path.name, node.lineno, "f-string subject"))
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("partition", "split"):
                receiver = ast.unparse(getattr(node.func, "value", node))
                if _literal_strings(node) == [":"] and (
                    "subject" in receiver or "sub" in receiver.split(".")
                ):
                    found.append((path.name, node.lineno, 'partition(":")'))
    assert found == []


def test_the_identity_checks_see_a_violation() -> None:
    """The scans above are not vacuous: the same walk finds a hand-written role comparison."""
    tree = ast.parse('if caller.role == "citizen":\n    subject = f"user:{uid}"\n')
    compares = [n for n in ast.walk(tree) if isinstance(n, ast.Compare)]
    assert set(_literal_strings(compares[0])) & ROLE_NAMES == {"citizen"}
    assert any(isinstance(n, ast.JoinedStr) for n in ast.walk(tree))
