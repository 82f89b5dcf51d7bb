"""The import contract of ARCHITECTURE.md, checked on the source: the layers in one list, no import
upward (in-function imports included), no cycle between modules, torch kept out of drafting."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
# Bottom to top: a module may import its own layer and the layers below it, never one above.
LAYERS = [
    ("base", ("cope_local", "cope_local.errors", "cope_local.home", "cope_local.progress", "migrations")),
    ("gguf", ("cope_local.gguf",)),
    ("engine", ("cope_local.engine",)),
    ("drafting", ("cope_local.drafting",)),
    ("store", ("cope_local.store",)),
    ("importers", ("cope_local.importers",)),
    ("eval", ("cope_local.eval",)),
    ("jobs", ("cope_local.jobs",)),
    ("trainer", ("trainer",)),
    ("interfaces", ("cope_local.cli", "cope_local.__main__", "tui")),
]
HEAVY = {"torch", "transformers", "peft", "trl", "accelerate", "datasets"}
LOOSE_MODULES_AT_MOST = 6


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for folder in ("cope_local", "trainer", "tui", "migrations")
           for p in sorted((ROOT / folder).rglob("*.py"))}


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import in the file, relative ones resolved;
    `from package import module` names the module."""
    tree = ast.parse(path.read_text())
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            name = ".".join(filter(None, [base, node.module]))
            for alias in node.names:
                found.append((f"{name}.{alias.name}" if f"{name}.{alias.name}" in MODULES else name, id(node) in top_level))
    return found


def project_module(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def layer(module: str) -> int:
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or (prefix != "cope_local" and module.startswith(prefix + "."))]
    assert matches, f"{module} is in no layer of ARCHITECTURE.md"
    return max(matches)[1]


def edges() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        targets = {project_module(imported) for imported, _ in imports(path)}
        graph[name] = {t for t in targets if t and t != name}
    return graph


def test_every_module_is_in_a_layer():
    for name in MODULES:
        layer(name)


def test_no_module_imports_a_layer_above_its_own_not_even_inside_a_function():
    upward = [f"{source} ({LAYERS[layer(source)][0]}) imports {target} ({LAYERS[layer(target)][0]})"
              for source, targets in edges().items() for target in targets if layer(target) > layer(source)]
    assert upward == []


def test_no_import_cycle_between_modules_counting_in_function_imports():
    graph, cycles = edges(), []
    index, low, stack, on_stack, counter = {}, {}, [], set(), [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert cycles == []


def test_cope_local_never_imports_torch_the_trainer_or_the_app_at_module_level():
    banned = HEAVY | {"trainer", "tui"}
    found = [f"{name} imports {imported}" for name, path in MODULES.items() if name.startswith("cope_local")
             for imported, top in imports(path) if top and imported.split(".")[0] in banned]
    assert found == []


def test_below_the_trainer_nothing_imports_torch_even_inside_a_function():
    trainer = layer("trainer")
    found = [f"{name} imports {imported}" for name, path in MODULES.items() if layer(name) < trainer
             for imported, _ in imports(path) if imported.split(".")[0] in HEAVY]
    assert found == []


def test_the_tree_shows_the_layers():
    loose = sorted(p.name for p in (ROOT / "cope_local").glob("*.py"))
    assert len(loose) <= LOOSE_MODULES_AT_MOST, loose
    for _, prefixes in LAYERS:
        for prefix in prefixes:
            assert prefix in MODULES, f"{prefix} is listed as a layer but does not exist"


def test_every_cope_error_raised_tells_the_person_what_to_do_next():
    """A user-facing failure is a CopeError with a hint (Cancelled says what was kept instead)."""
    bare = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "CopeError":
                if not any(k.arg == "hint" for k in node.keywords) and len(node.args) < 2:
                    bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bare == []


def test_drafting_runs_without_torch():
    code = ("import sys, cope_local.cli, cope_local.jobs.draft, cope_local.drafting.draft, cope_local.eval.results;"
            " print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_tree_is_clean_under_ruff():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
