"""The self-contained bundle's entry point: COMMAND's environment and the slim re-exec."""

from __future__ import annotations

import sys

from hypothesis import given
from hypothesis import strategies as st

from linkinit.frozen import container_environment
from linkinit.init import prestart, supervise

BUNDLE_LIBS = "/opt/linkinit/_internal"
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,12}", fullmatch=True).filter(
    lambda name: not name.startswith("_PYI_") and name != "LD_LIBRARY_PATH_ORIG"
)
values = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
                 max_size=20)


def as_the_bootloader_restarts(environ: dict[str, str]) -> dict[str, str]:
    """What PyInstaller's onedir bootloader (6.x, Linux) hands its restarted self."""
    env = dict(environ)
    if "LD_LIBRARY_PATH" in environ:
        env["LD_LIBRARY_PATH_ORIG"] = environ["LD_LIBRARY_PATH"]
        env["LD_LIBRARY_PATH"] = f"{BUNDLE_LIBS}:{environ['LD_LIBRARY_PATH']}"
    else:
        env["LD_LIBRARY_PATH"] = BUNDLE_LIBS
    env.update({
        "_PYI_ARCHIVE_FILE": "/opt/linkinit/linkinit",
        "_PYI_APPLICATION_HOME_DIR": BUNDLE_LIBS,
        "_PYI_PARENT_PROCESS_LEVEL": "-1",
        "_PYI_LINUX_PROCESS_NAME": "linkinit",
    })
    return env


@given(st.dictionaries(names, values, max_size=8))
def test_command_gets_the_containers_environment_not_the_bootloaders(environ):
    """Whatever the container set, COMMAND sees exactly that: no _PYI_*, no bundle libraries."""
    assert container_environment(as_the_bootloader_restarts(environ)) == environ


def test_a_library_path_the_container_set_is_given_back_unchanged():
    """LD_LIBRARY_PATH of the image is restored from the bootloader's saved copy."""
    env = as_the_bootloader_restarts({"LD_LIBRARY_PATH": "/usr/local/lib", "A": "1"})
    assert container_environment(env) == {"LD_LIBRARY_PATH": "/usr/local/lib", "A": "1"}


def test_the_frozen_bundle_reexecutes_itself_as_the_slim_watcher(monkeypatch):
    """No python3 in the image: the watcher is the bundle's own executable in its slim mode."""
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/linkinit/linkinit")
    assert prestart._slim_command() == ["/opt/linkinit/linkinit", supervise.SLIM_WATCHER]


def test_a_python_install_reexecutes_a_bare_interpreter(monkeypatch):
    """Installed with pip, the watcher stays ``python -I -S`` importing supervise alone."""
    monkeypatch.delattr(sys, "frozen", raising=False)
    command = prestart._slim_command()
    assert command is not None
    assert command[:4] == [sys.executable, "-I", "-S", "-c"]
    assert command[-1].endswith("linkinit/init")
