"""The package layering that docs/architecture.md draws, checked on every import statement
(also the lazy ones inside functions): config/ imports no plug-in package; the stage
packages (collectors, detectors, alerting, storage) import neither the specs nor the
runtime; the runtime imports no command and nothing of the edges (http, workers, ui, cli);
the commands import no edge; http imports neither the workers nor the commands; the ui is
presentation only (no aiohttp, no http, no workers); no module imports another's private
name; the modules' imports form no circle; only the process imports the daemon; the
metric runtime imports no plug-in registry; no module is over ~400 lines as the formatter
writes it (a `# fmt: skip` may keep a table's layout, not lines out of the count)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.files import REPO

PACKAGE = REPO / "detectkd"
STAGES = {"collectors", "detectors", "alerting", "storage"}
EDGES = {"http", "workers", "ui", "cli", "app"}
TOP = {"commands"} | EDGES
FORBIDDEN: dict[str, set[str]] = {
    "config": STAGES | {"specs", "runtime"} | TOP,
    **{stage: {"specs", "runtime"} | TOP for stage in STAGES},
    "specs": {"runtime"} | TOP,
    "runtime": TOP,
    "commands": EDGES - {"ui"},  # the backtest report is drawn as the UI draws
    "http": {"workers", "commands", "cli", "app"},
    "workers": {"commands", "cli", "app"},
    "ui": {"http", "workers", "commands", "cli", "app"},
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


# A formatter pragma: `# fmt: skip` keeps a statement as written, `# fmt: off` / `# fmt: on`
# a region (ruff reads the yapf spellings too).
PRAGMA = re.compile(r"#\s*(?:fmt:\s*(?:skip|off|on)|yapf:\s*(?:disable|enable))\b.*$")


def as_formatted(sources: dict[str, str]) -> dict[str, int]:
    """Each module's length (by relative path) as `ruff format` writes it with its pragmas taken
    out: a pragma may keep a table's layout, never lines out of the size cap."""
    with tempfile.TemporaryDirectory() as tmp:
        for rel, text in sources.items():
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            lines = [PRAGMA.sub("", line).rstrip() for line in text.splitlines()]
            (Path(tmp) / rel).write_text("\n".join(lines) + "\n")
        config = ["--config", str(REPO / "pyproject.toml"), "--no-cache"]
        subprocess.run(
            [sys.executable, "-m", "ruff", "format", *config, tmp], check=True, capture_output=True
        )
        return {rel: len((Path(tmp) / rel).read_text().splitlines()) for rel in sources}


def test_no_module_is_over_about_400_lines_as_formatted() -> None:
    sources = {str(p.relative_to(REPO)): p.read_text() for p in PACKAGE.rglob("*.py")}
    long = {rel: n for rel, n in as_formatted(sources).items() if n > MAX_LINES}
    assert long == {}


def test_lines_a_pragma_packs_still_count() -> None:
    """A list packed under each pragma counts as the formatter writes it: 8 lines."""
    table = "x = [1, 2, 3,\n     4, 5, 6,]\n"
    packed = {
        "skip.py": "x = [1, 2, 3,\n     4, 5, 6,]  # fmt: skip\n",
        "region.py": f"# fmt: off\n{table}# fmt: on\n",
        "yapf.py": f"# yapf: disable\n{table}# yapf: enable\n",
    }
    assert as_formatted(packed) == {"skip.py": 8, "region.py": 8, "yapf.py": 8}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(REPO).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(module, names) of every detectkd import in `path` (a `from a import b` where `a.b` is
    a module counts as importing `a.b`)."""
    nodes = ast.walk(ast.parse(path.read_text(), str(path)))
    return [x for n in nodes if isinstance(n, ast.Import | ast.ImportFrom) for x in _imports_of(n, modules)]


def test_the_modules_imports_form_no_circle() -> None:
    """Also the lazy imports inside functions (a circle dodged that way is still a circle);
    only `if TYPE_CHECKING:` imports are left out (they never run)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        checking = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        deps = set()
        for node in ast.walk(tree):
            if id(node) in checking:
                continue
            if isinstance(node, ast.Import | ast.ImportFrom):
                for mod, _ in _imports_of(node, modules):
                    if mod in modules and mod != name:
                        deps.add(mod)
        graph[name] = deps
    circles = []
    state: dict[str, int] = {}

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                circles.append(" -> ".join([*stack[stack.index(d) :], d]))
            elif d not in state:
                visit(d, [*stack, d])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert circles == []


def _imports_of(node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> list[tuple[str, list[str]]]:
    if isinstance(node, ast.Import):
        return [(a.name, []) for a in node.names if a.name.startswith("detectkd")]
    if not node.module or not node.module.startswith("detectkd") or node.level:
        return []
    subs = [a.name for a in node.names if f"{node.module}.{a.name}" in modules]
    out: list[tuple[str, list[str]]] = [(f"{node.module}.{n}", []) for n in subs]
    rest = [a.name for a in node.names if a.name not in subs]
    if rest or not subs:
        out.append((node.module, rest))
    return out


def test_no_module_imports_another_modules_private_name() -> None:
    modules = _modules()
    problems = []
    for name, path in sorted(modules.items()):
        for mod, names in _imports(path, modules):
            private = [n for n in names if n.startswith("_") and not n.startswith("__") and mod != name]
            if private:
                problems.append(f"{path.relative_to(REPO)} imports {private} from {mod}")
    assert problems == []


def test_the_ui_is_presentation_only() -> None:
    """Templates, static files and pure render functions: serving them is detectkd.http's."""
    served = [
        str(p.relative_to(REPO))
        for p in (PACKAGE / "ui").rglob("*.py")
        if any(n.split(".")[0] == "aiohttp" for n in _third_party(p))
    ]
    assert served == []


def _third_party(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


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


def test_only_the_process_imports_the_daemon() -> None:
    """`runtime/daemon.py` composes the metric set, the view, the outbox dispatcher and the
    election; collaborators are handed `MetricSet` methods, never the daemon, so nothing in
    the package but the process (`app.py`) imports it (docs/architecture.md)."""
    modules = _modules()
    importers = sorted(
        name
        for name, path in modules.items()
        if name not in ("detectkd.app", "detectkd.runtime.daemon")
        and any(mod == "detectkd.runtime.daemon" for mod, _ in _imports(path, modules))
    )
    assert importers == []


def test_a_metric_runtime_is_handed_its_plug_ins() -> None:
    """`runtime.slot.assemble` builds a metric's collector and detectors (`runtime.parts`);
    `MetricRuntime` (runner.py) imports no registry, so it cannot build its own."""
    modules = _modules()
    builders = {
        "detectkd.collectors.registry",
        "detectkd.detectors.registry",
        "detectkd.alerting.channels.registry",
        "detectkd.runtime.calendar",
    }
    used = {mod for mod, _ in _imports(PACKAGE / "runtime" / "runner.py", modules)}
    assert used & builders == set()
    assert "detectkd.runtime.calendar" in {
        mod for mod, _ in _imports(PACKAGE / "runtime" / "slot.py", modules)
    }
