"""The import contract of ARCHITECTURE.md, checked on the source (module-level and lazy imports)."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
HEAVY = {"torch", "transformers", "peft", "trl", "accelerate", "datasets"}
STORE = {"cope_local.store", "cope_local.database", "cope_local.keys", "cope_local.models", "cope_local.draft",
         "cope_local.adapter_registry", "cope_local.privacy", "sqlcipher3", "keyring", "sqlite_utils"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import in the file, relative ones resolved."""
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
            found.append((name, id(node) in top_level))
            found += [(f"{name}.{alias.name}", id(node) in top_level) for alias in node.names]
    return found


def files(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


def offending(folder: str, banned: set[str], module_level_only: bool) -> list[str]:
    return [f"{path.relative_to(ROOT)} imports {name}" for path in files(folder) for name, top in imports(path)
            if (top or not module_level_only) and any(name == b or name.startswith(b + ".") for b in banned)]


def test_cope_local_never_imports_torch_the_trainer_or_the_app_at_module_level():
    assert offending("cope_local", HEAVY | {"trainer", "tui"}, module_level_only=True) == []


def test_the_engine_and_the_gguf_layer_never_import_the_store():
    assert offending("cope_local/engine", STORE | HEAVY, module_level_only=False) == []
    assert offending("cope_local/gguf", STORE | HEAVY | {"cope_local.engine", "llama_cpp"}, module_level_only=False) == []


def test_the_drafting_policy_is_below_the_store():
    for name in ("methods.py", "prompts.py", "tasks.py"):
        path = ROOT / "cope_local" / name
        assert [n for n, _ in imports(path) if any(n == b or n.startswith(b + ".") for b in STORE)] == [], name


def test_the_trainer_never_imports_the_app_or_the_cli():
    assert offending("trainer", {"tui", "cope_local.cli"}, module_level_only=False) == []


def test_the_cli_has_no_import_cycle():
    """Each command module imports only `common`; the package puts their commands on the group."""
    for path in files("cope_local/cli"):
        if path.name != "__init__.py":
            names = [n for n, _ in imports(path) if n.startswith("cope_local.cli")]
            assert all(n.startswith("cope_local.cli.common") for n in names), path


def test_drafting_runs_without_torch():
    code = "import sys, cope_local.cli, cope_local.draft, cope_local.methods; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_tree_is_clean_under_ruff():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
