"""The bundle's build gate (linkinit/bundle_check.py): a module the bundled linkinit imports
and the bundle lacks fails the build; what the spec leaves out on purpose does not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from linkinit.bundle_check import bundled_modules, imported_modules, missing_modules

SOURCE = """\
from __future__ import annotations
import os, json.decoder
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Mapping
from . import hosts
from .envvars import build

def load():
    import yaml  # late: only a file needs it
    from linkinit import supervise
    return yaml
"""


@pytest.mark.parametrize(
    ("module", "is_package", "expected"),
    [
        ("linkinit.declare", False,
         {"__future__", "os", "json.decoder", "linkinit", "linkinit.hosts", "linkinit.envvars",
          "yaml", "linkinit.supervise"}),
        ("linkinit.init", True,
         {"__future__", "os", "json.decoder", "linkinit", "linkinit.init",
          "linkinit.init.hosts", "linkinit.init.envvars", "yaml", "linkinit.supervise"}),
    ],
    ids=["module", "package"],
)
def test_imports_are_found_at_the_top_and_inside_functions(module, is_package, expected):
    """Late imports count (yaml, tenacity are imported inside functions); the
    type-checking-only ones do not; relative imports are resolved; a name taken from a
    package is a module only where it is one of linkinit's."""
    known = {"linkinit.hosts", "linkinit.supervise", "linkinit.init.hosts"}
    assert imported_modules(SOURCE, module, is_package, known) == expected


def make_bundle(root: Path, files: list[str]) -> Path:
    internal = root / "bundle" / "_internal"
    for name in files:
        (internal / name).parent.mkdir(parents=True, exist_ok=True)
        (internal / name).write_bytes(b"")
    return root / "bundle"


def test_bundled_modules_reads_pyc_packages_and_extensions(tmp_path):
    bundle = make_bundle(tmp_path, [
        "os.pyc", "json/__init__.pyc", "json/decoder.pyc",
        "python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so",
        "yaml/__init__.pyc", "yaml/_yaml.cpython-311-x86_64-linux-gnu.so", "libz.so.1",
    ])
    assert bundled_modules(bundle / "_internal") == {
        "os", "json", "json.decoder", "_json", "yaml", "yaml._yaml"}


def checkout_with(tmp_path: Path, source: str) -> Path:
    package = tmp_path / "checkout" / "linkinit"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "frozen.py").write_text("from linkinit import cli\n")
    (package / "cli.py").write_text(source)
    (package / "ls.py").write_text("import aiohttp\n")  # a host tool: not bundled, not checked
    return tmp_path / "checkout"


BUNDLED = ["linkinit/__init__.pyc", "linkinit/frozen.pyc", "linkinit/cli.pyc", "os.pyc"]


def test_a_late_import_the_bundle_lacks_is_named_with_who_imports_it(tmp_path):
    """The gate's reason to exist: yaml imported in a function, not in the bundle."""
    checkout = checkout_with(tmp_path, "import os\n\ndef f():\n    import yaml\n")
    bundle = make_bundle(tmp_path, BUNDLED)
    assert missing_modules(bundle, checkout, []) == ["yaml (imported by linkinit.cli)"]


def test_a_whole_bundle_passes(tmp_path):
    checkout = checkout_with(tmp_path, "import os\n\ndef f():\n    import yaml\n")
    bundle = make_bundle(tmp_path, [*BUNDLED, "yaml/__init__.pyc"])
    assert missing_modules(bundle, checkout, []) == []


def test_what_the_spec_leaves_out_and_built_in_modules_count_as_present(tmp_path):
    """A host tool cli imports for `ls` is excluded on purpose; sys and posix are built in."""
    late_ls = "import sys, posix\n\ndef f():\n    from linkinit import ls\n"
    checkout = checkout_with(tmp_path, late_ls)
    bundle = make_bundle(tmp_path, BUNDLED)
    assert "posix" in sys.builtin_module_names
    assert missing_modules(bundle, checkout, ["linkinit.ls"]) == []
    assert missing_modules(bundle, checkout, []) == ["linkinit.ls (imported by linkinit.cli)"]


def test_a_bundle_without_its_entry_point_fails(tmp_path):
    checkout = checkout_with(tmp_path, "")
    bundle = make_bundle(tmp_path, ["os.pyc"])
    assert missing_modules(bundle, checkout, []) == ["linkinit.frozen (the entry point itself)"]
