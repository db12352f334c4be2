"""The package layering that docs/architecture.md draws, checked on every import statement
(also the lazy ones inside functions): config/ imports no plug-in package; the stage
packages (collectors, detectors, alerting, storage) import neither the specs nor the
runtime; the runtime imports no command; no module is over ~400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.files import REPO

PACKAGE = REPO / "detectkd"
STAGES = {"collectors", "detectors", "alerting", "storage"}
TOP = {"commands", "web", "cli", "app"}
FORBIDDEN: dict[str, set[str]] = {
    "config": STAGES | {"specs", "runtime"} | TOP,
    **{stage: {"specs", "runtime"} | TOP for stage in STAGES},
    "specs": {"runtime"} | TOP,
    "runtime": TOP - {"web"},
}
MAX_LINES = 420


def imported(path: Path) -> set[str]:
    """The first component under `detectkd.` of everything `path` imports."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "detectkd" and len(parts) > 1:
                out.add(parts[1])
    return out


def test_each_layer_imports_only_what_is_below_it() -> None:
    problems = []
    for layer, forbidden in FORBIDDEN.items():
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            bad = imported(path) & forbidden
            if bad:
                problems.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert problems == []


def test_no_module_is_over_about_400_lines() -> None:
    long = {
        str(p.relative_to(REPO)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_tests_share_helpers_only_through_tests_support() -> None:
    """A test module (or a conftest, or a benchmark) imports helpers from tests/support/ and
    never another test module: moving or deleting a test must not break the others."""
    offenders = []
    for path in sorted([*(REPO / "tests").rglob("*.py"), *(REPO / "benchmarks").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            elif isinstance(node, ast.ImportFrom):  # relative: reaches a sibling module
                modules = ["tests." + "." * node.level + (node.module or "")]
            else:
                continue
            for module in modules:
                if (
                    module.split(".")[0] == "tests"
                    and module != "tests.support"
                    and not module.startswith("tests.support.")
                ):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} imports {module}")
    assert offenders == [], "import test helpers from tests.support:\n" + "\n".join(offenders)
