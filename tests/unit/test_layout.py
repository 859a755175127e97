"""The folder listing is the architecture, and the tests keep it so.

linkinit is three programs over two shared layers: ``model`` (pure) <- ``engine`` <- the
init (``init``) and the host tools (``host``), with the application library
(``client.py``), the command line (``cli.py``) and ``errors``/``usage`` at the top. Imports
go one way; every import counts, also one made inside a function to keep the start path lean.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "linkinit"
MAX_LINES = 450
# PID 1's supervisor is one standard-library file that runs alone, as tini's is.
LONGER = {"init/supervise.py": 900}
# errors, usage and fastjson (JSON without re, for the start path) are leaves at the top that
# any layer may import; what each layer may import of linkinit besides itself and them:
SHARED = {"errors", "usage", "fastjson"}
ALLOWED = {
    "model": set(),
    "engine": {"model"},
    "init": {"model", "engine"},
    "host": {"model", "engine"},
}


def modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


def layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else "top"


def linkinit_imports(path: Path) -> set[str]:
    """The first part under linkinit of every module ``path`` imports (absolute or relative)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}: relative import; write linkinit.<layer>...")
            names = [node.module or ""]
            if node.module == "linkinit":
                names = [f"linkinit.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name.split(".")[1] for name in names
                  if name.startswith("linkinit.") and name.count(".") >= 1}
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_one_way(path: Path) -> None:
    own = layer(path)
    if own == "top":
        return
    wrong = linkinit_imports(path) - ALLOWED[own] - SHARED - {own}
    assert not wrong, f"{path.relative_to(PACKAGE)} ({own}) imports {sorted(wrong)}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_longer_than_the_limit(path: Path) -> None:
    name = str(path.relative_to(PACKAGE))
    lines = len(path.read_text().splitlines())
    assert lines <= LONGER.get(name, MAX_LINES), f"{name} has {lines} lines: split it by job"


def test_the_layers_are_the_folders() -> None:
    folders = {path.name for path in PACKAGE.iterdir()
               if path.is_dir() and (path / "__init__.py").exists()}
    assert folders == set(ALLOWED)


def test_the_gate_sees_a_wrong_import(tmp_path: Path) -> None:
    """The control: a host module that imports the init is caught."""
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from linkinit.init import resolve\n")
    assert linkinit_imports(module) == {"init"}
