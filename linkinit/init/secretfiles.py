"""``link.<alias>.secrets=files``: a child's variables handed to COMMAND as files.

An environment leaks: every process COMMAND starts inherits it, crash reports and debug
pages print it, ``docker inspect`` of a committed image shows it. Applications therefore
take secrets as files (the ``*_FILE`` convention of the official images), and this module
gives them that: each copied ``<ALIAS>_ENV_<KEY>`` becomes the file
``<dir>/<ALIAS>_ENV_<KEY>`` (mode 0400) and COMMAND gets ``<ALIAS>_ENV_<KEY>_FILE=<path>``
in place of the value. The directory is a tmpfs where linkinit may mount one (root with
CAP_SYS_ADMIN), else a plain directory, mode 0700; either way it belongs to the user
linkinit runs as, who is the user COMMAND runs as (linkinit never changes user).

The transformation is pure (``fingerprinted``, ``as_file_variables``); writing is
``prepare_directory`` and ``write_files``. Follow mode compares what COMMAND was given
without keeping the values: a secret variable's value is replaced by its SHA-256 behind a
NUL (``MARK``), which no environment value can hold, so the mark also says which variables
are files.
"""

from __future__ import annotations

import os

from linkinit.errors import DeclarationError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Callable, Iterable, Mapping, Sequence

    from linkinit.model.envvars import ResolvedLink

    Pairs = Sequence[tuple[str, str]]

SECRETS_DIR = "/run/linkinit-secrets"
SUFFIX = "_FILE"
MARK = "\0sha256:"  # a value no environment can hold: this variable is a file
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8


def secrets_dir(environ: Mapping[str, str]) -> str:
    """Where the files go: ``LINKINIT_SECRETS_DIR`` (an absolute path: COMMAND may change
    directory), else /run/linkinit-secrets."""
    directory = environ.get("LINKINIT_SECRETS_DIR") or SECRETS_DIR
    if not os.path.isabs(directory):
        raise DeclarationError(f"LINKINIT_SECRETS_DIR={directory}: give an absolute path")
    return directory


def secret_names(link: ResolvedLink) -> list[str]:
    """The link's ``<ALIAS>_ENV_<KEY>`` variables: those the child's environment adds."""
    from linkinit.model.envvars import link_variables

    without = {name for name, _ in link_variables(link._replace(env=()))}
    return [name for name, _ in link_variables(link) if name not in without]


def fingerprint(value: str) -> str:
    import hashlib

    return MARK + hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def fingerprinted(variables: Pairs, names: Iterable[str]) -> list[tuple[str, str]]:
    """The variables with each secret's value replaced by its fingerprint (order kept)."""
    secret = set(names)
    return [(name, fingerprint(value) if name in secret else value)
            for name, value in variables]


def as_file_variables(variables: Pairs, directory: str) -> list[tuple[str, str]]:
    """What COMMAND gets: each fingerprinted variable as ``<NAME>_FILE=<directory>/<NAME>``."""
    return [(name + SUFFIX, os.path.join(directory, name)) if value.startswith(MARK)
            else (name, value) for name, value in variables]


def file_name_problem(name: str) -> str:
    """Why a variable cannot be a file of its own ("" if it can): a key with a slash."""
    if "/" in name or name in (".", "..") or len(name.encode()) > 255:
        return f"{name} cannot be a file name"
    return ""


# -- the files --------------------------------------------------------------------------


def prepare_directory(directory: str, report: Callable[[str], None], mount: bool = True) -> None:
    """The directory, 0700 and this user's: a tmpfs mounted there where we may (``mount``;
    the unit tests, on the host, may not), else a plain directory (said on stderr: the
    files then live in the container's own layer)."""
    _make(directory)
    problem = ""
    if mount and not os.path.ismount(directory):
        problem = _mount_tmpfs(directory) if os.geteuid() == 0 else "not root: no mount"
    _check_owned(directory)
    if problem:
        report(f"secrets: {directory} is a plain directory, not a tmpfs ({problem}); "
               f"`docker run --tmpfs {directory}` keeps the files in memory only")


def _make(directory: str) -> None:
    """Create the directory if missing."""
    try:
        os.makedirs(directory, mode=0o700)
    except FileExistsError:
        pass
    except OSError as error:
        raise DeclarationError(_cannot(directory, error.strerror or str(error))) from None


def _cannot(directory: str, why: str) -> str:
    uid = os.geteuid()
    return (f"secrets=files: cannot use {directory} ({why}); it must be a directory this user "
            f"(uid {uid}) owns: run the container with --tmpfs {directory}:uid={uid},mode=0700, "
            "or set LINKINIT_SECRETS_DIR to one")


def _check_owned(directory: str) -> None:
    import stat

    try:
        info = os.lstat(directory)
        if not stat.S_ISDIR(info.st_mode):
            raise DeclarationError(_cannot(directory, "not a directory"))
        if info.st_uid != os.geteuid():
            raise DeclarationError(_cannot(directory, f"owned by uid {info.st_uid}"))
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(directory, 0o700)
    except OSError as error:
        raise DeclarationError(_cannot(directory, error.strerror or str(error))) from None


def _mount_tmpfs(directory: str) -> str:
    """mount(2) a tmpfs (through ``_ctypes``, as the supervisor's prctl); "" or why not."""
    from linkinit.init.prestart import libc_call

    options = f"mode=0700,uid={os.geteuid()},gid={os.getegid()},size=16m".encode()
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    try:
        errno = libc_call("mount", b"tmpfs", os.fsencode(directory), b"tmpfs", flags, options)
    except ImportError as error:  # a Python built without _ctypes
        return str(error)
    return os.strerror(errno) if errno else ""


def write_files(directory: str, values: Mapping[str, str], keep: Iterable[str]) -> None:
    """Each value to ``<directory>/<name>``, mode 0400, replaced atomically (a reader sees
    the old or the new, never half); files of names no longer in ``keep`` are removed."""
    for name, value in values.items():
        _write_one(directory, name, value)
    wanted = set(keep)
    try:
        present = os.listdir(directory)
    except OSError:
        return
    for name in present:
        if name not in wanted and not name.startswith("."):
            try:  # noqa: SIM105 (contextlib is one more import)
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


def _write_one(directory: str, name: str, value: str) -> None:
    path = os.path.join(directory, name)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    try:
        try:  # noqa: SIM105
            os.unlink(temporary)  # left by a run that died mid-write
        except FileNotFoundError:
            pass
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
        with open(fd, "wb") as file:
            file.write(value.encode("utf-8", "surrogateescape"))
        os.replace(temporary, path)
    except OSError as error:
        raise DeclarationError(_cannot(directory, f"{name}: {error.strerror}")) from None


def given_variables(link: ResolvedLink, secrets: bool) -> list[tuple[str, str]]:
    """The link's variables as COMMAND is given them, secrets fingerprinted (``MARK``); a
    secret that cannot be a file of its own is left out."""
    from linkinit.model.envvars import link_variables

    variables = link_variables(link)
    if not secrets:
        return variables
    names = secret_names(link)
    return fingerprinted([(name, value) for name, value in variables
                          if name not in names or not file_name_problem(name)], names)


def secret_values(link: ResolvedLink) -> dict[str, str]:
    """The link's secret variables that become files: name -> value."""
    from linkinit.model.envvars import link_variables

    names = set(secret_names(link))
    return {name: value for name, value in link_variables(link)
            if name in names and not file_name_problem(name)}


def export(links: Sequence[ResolvedLink], secret_aliases: Iterable[str], directory: str,
           report: Callable[[str], None], mount: bool = True) -> dict[str, str]:
    """In the resolver: write the files of the links declared ``secrets=files`` and return
    every link variable COMMAND gets, with ``_FILE`` ones in place of those values."""
    aliases = set(secret_aliases)
    pairs: list[tuple[str, str]] = []
    values: dict[str, str] = {}
    for link in links:
        secret = link.alias in aliases
        if secret:
            for name in secret_names(link):
                if file_name_problem(name):
                    report(f"secrets: {file_name_problem(name)}: it is not exported")
            values.update(secret_values(link))
        pairs += given_variables(link, secret)
    prepare_directory(directory, report, mount)
    write_files(directory, values, values)
    return dict(as_file_variables(pairs, directory))
