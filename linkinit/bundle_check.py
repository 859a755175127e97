"""The bundle's build gate: every module the bundled linkinit can import is in the bundle.

PyInstaller only warns when a hidden import is not installed where it runs, and a bundle
built without ``yaml`` or ``tenacity`` failed only when a user took that path (a YAML file,
an Engine to retry). So ``scripts/build-bundle`` runs this after freezing, and a missing
module fails the build. Each linkinit module in the bundle is read from the checkout; every
module it imports (at the top or inside a function; not the type-checking-only ones) must be
in the bundle, built into the interpreter, or deliberately left out (the host tools and what
only they use: the spec's ``excludes``). The spec (packaging/linkinit-bundle.spec) calls it
on the build machine; it is never in a bundle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Iterable, Iterator, Sequence


def _type_checking_only(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` blocks import for the type checker alone."""
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING")


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """ast.walk without descending into type-checking-only blocks."""
    for child in ast.iter_child_nodes(node):
        if _type_checking_only(child):
            continue
        yield child
        yield from _walk(child)


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name ``from .x import y`` means inside ``module``."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imported_modules(source: str, module: str, is_package: bool,
                     known: Iterable[str] = ()) -> set[str]:
    """Every module ``source`` (the text of ``module``) imports, as absolute names.

    ``from p import n`` names ``p``, and ``p.n`` too where that is one of the ``known``
    modules (linkinit's own submodules: an attribute of an outside package cannot be told
    from a submodule without importing it).
    """
    known = set(known)
    found: set[str] = set()
    for node in _walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known)
    found.discard("")
    return found


def bundled_modules(internal: Path) -> set[str]:
    """The modules a PyInstaller one-directory bundle (built with ``noarchive``) carries."""
    names: set[str] = set()
    for path in internal.rglob("*"):
        relative = path.relative_to(internal)
        if relative.parts[0].startswith("python3") and path.suffix == ".so":  # lib-dynload
            names.add(path.name.split(".")[0])
        elif path.suffix == ".pyc" or (path.suffix == ".so" and ".cpython-" in path.name):
            parts = [*relative.parts[:-1], path.name.split(".")[0]]
            names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _covered(name: str, present: set[str], excluded: Sequence[str]) -> bool:
    """In the bundle (with every parent package), built in, or left out on purpose."""
    if any(name == e or name.startswith(e + ".") for e in excluded):
        return True
    parts = name.split(".")
    return all(".".join(parts[:i]) in present for i in range(1, len(parts) + 1))


def _checkout_modules(checkout: Path) -> set[str]:
    """linkinit's modules in the checkout, bundled or not (``from linkinit import ls``)."""
    names = set()
    for path in (checkout / "linkinit").rglob("*.py"):
        parts = path.relative_to(checkout).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def missing_modules(bundle: str | Path, checkout: str | Path,
                    excluded: Sequence[str]) -> list[str]:
    """What the bundle's linkinit modules import and the bundle lacks, as ``module (by who)``.

    Built with the Python that runs this: its built-in modules count as present.
    """
    internal = Path(bundle) / "_internal"
    checkout = Path(checkout)
    present = bundled_modules(internal) | set(sys.builtin_module_names)
    ours = sorted(n for n in present if n == "linkinit" or n.startswith("linkinit."))
    if "linkinit.frozen" not in ours:
        return ["linkinit.frozen (the entry point itself)"]
    known = _checkout_modules(checkout)
    problems = []
    for module in ours:
        path = checkout.joinpath(*module.split("."))
        is_package = path.is_dir()
        source = path / "__init__.py" if is_package else path.with_suffix(".py")
        for name in sorted(imported_modules(source.read_text(), module, is_package, known)):
            if not _covered(name, present, excluded):
                problems.append(f"{name} (imported by {module})")
    return problems
