"""Domains never import each other; only `service` and `cli` import domains (DESIGN.md, Boundaries)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "smartcare"
DOMAINS = {"imaging", "genomics", "hospital", "publichealth"}


def imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of every module imported by the file (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                names.add(node.module)
    return names


def violations(src: Path) -> list[str]:
    """Every import that crosses a boundary, as 'file -> module'."""
    found = []
    for path in src.rglob("*.py"):
        rel = path.relative_to(src.parent)
        parts = rel.with_suffix("").parts  # ("smartcare", top, ...)
        top = parts[1] if len(parts) > 1 else ""
        package = ".".join(parts[:-1])
        for mod in imported_modules(path, package):
            bits = mod.split(".")
            if bits[0] != "smartcare" or len(bits) < 2 or bits[1] not in DOMAINS:
                continue
            target = bits[1]
            if top in ("service", "cli"):
                continue
            if top == "core" or (top in DOMAINS and target != top) or top == "__init__":
                found.append(f"{rel} -> {mod}")
    return found


def test_no_cross_domain_imports():
    assert violations(SRC) == []


def test_checker_catches_a_violation(tmp_path):
    pkg = tmp_path / "smartcare"
    for d in ("core", "imaging", "genomics"):
        (pkg / d).mkdir(parents=True)
        (pkg / d / "__init__.py").write_text("")
    (pkg / "genomics" / "bad.py").write_text("from smartcare.imaging import io\n")
    (pkg / "genomics" / "rel.py").write_text("from ..imaging import io\n")
    (pkg / "core" / "worse.py").write_text("import smartcare.genomics.call\n")
    (pkg / "imaging" / "fine.py").write_text("from smartcare.core import metrics\nfrom . import x\n")
    found = violations(pkg)
    assert sorted(found) == [
        "smartcare/core/worse.py -> smartcare.genomics.call",
        "smartcare/genomics/bad.py -> smartcare.imaging",
        "smartcare/genomics/rel.py -> smartcare.imaging",
    ]
