"""Templates rendered from the links: a configuration file written before COMMAND starts, and
again when follow mode sees a child move.

DEST is replaced atomically (a file beside it, then a rename), so COMMAND never reads half a
file. A ``check`` command runs first with that new file named by ``$LINKINIT_TEMPLATE_FILE``
(confd's ``check_cmd``): failing at start it is a declaration error; failing in follow mode it
keeps the old file, and the caller skips the policy for that change. The declarations and a
template's names are the model's (``linkinit/model/templates.py``).

Jinja2 is an extra (``linkinit[templates]``) and is imported here only, and only when a
template is declared: the start path of a container without templates never loads it.
"""

from __future__ import annotations

import os

from linkinit.errors import DeclarationError
from linkinit.model.templates import (
    CHECK_TIMEOUT,
    DEFAULT_MODE,
    DEST_VARIABLE,
    FILE_VARIABLE,
    TemplateSpec,
    context,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

    from linkinit.model.envvars import ResolvedLink


# -- rendering -----------------------------------------------------------------------------


def render(template: TemplateSpec, names: Mapping[str, Any]) -> str:
    """The template's text; any error is a DeclarationError naming the file, its line and
    what failed (an undefined name, a syntax error)."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    folder, base = os.path.split(template.source)
    environment = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(folder), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, autoescape=False)
    try:
        return environment.get_template(base).render(names)
    except jinja2.TemplateNotFound as error:  # the source, or a file it includes
        missing = template.source if error.name == base else error.name
        raise DeclarationError(f"{template.origin}: template {missing}: no such file") \
            from None
    except jinja2.TemplateSyntaxError as error:
        where = f"{error.filename or template.source}:{error.lineno}"
        raise DeclarationError(f"{template.origin}: {where}: {error.message}") from None
    except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError,
            ValueError) as error:
        where = _template_line(error, folder) or template.source
        raise DeclarationError(f"{template.origin}: {where}: {error}") from None


def _template_line(error: BaseException, folder: str) -> str:
    """``file:line`` of the template frame an error was raised in (Jinja2 rewrites its
    tracebacks to point at template lines)."""
    found = ""
    trace = error.__traceback__
    while trace is not None:
        filename = trace.tb_frame.f_code.co_filename
        if filename.startswith(folder + os.sep) and not filename.endswith(".py"):
            found = f"{filename}:{trace.tb_lineno}"
        trace = trace.tb_next
    return found


# -- writing -------------------------------------------------------------------------------


def staged_path(template: TemplateSpec) -> str:
    folder, base = os.path.split(template.dest)
    return os.path.join(folder, f".{base}.linkinit-new")


def stage(template: TemplateSpec, text: str) -> str:
    """Write the new file beside DEST (its directory created) with its mode and owner."""
    path = staged_path(template)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    mode = DEFAULT_MODE if template.mode is None else template.mode
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(descriptor, "w") as file:
            file.write(text)
            file.flush()
            os.fchmod(descriptor, mode)
            if template.owner:
                os.fchown(descriptor, *owner_ids(template.owner, template.origin))
            os.fsync(descriptor)
    except BaseException:
        os.unlink(path)  # no half-made file left beside DEST
        raise
    return path


def owner_ids(owner: str, origin: str) -> tuple[int, int]:
    """``user[:group]`` by name or number; the group defaults to the user's."""
    import grp
    import pwd

    user, _, group = owner.partition(":")
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        uid, gid = entry.pw_uid, entry.pw_gid
    except KeyError:
        if not user.isdigit():
            raise DeclarationError(f"{origin}.owner: no user {user!r} in this container") \
                from None
        uid = gid = int(user)
    if group:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise DeclarationError(f"{origin}.owner: no group {group!r} in this container") \
                from None
    return uid, gid


def run_check(template: TemplateSpec, staged: str,
              environment: Mapping[str, str]) -> tuple[bool, str]:
    """``sh -c CHECK`` with the new file as ``$LINKINIT_TEMPLATE_FILE``: passed, and what it
    printed (stdout and stderr together)."""
    import subprocess

    env = {**environment, FILE_VARIABLE: staged, DEST_VARIABLE: template.dest}
    try:
        done = subprocess.run(["/bin/sh", "-c", template.check], env=env, text=True,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=CHECK_TIMEOUT)
    except subprocess.TimeoutExpired as expired:
        return False, f"{expired.output or ''}(no answer after {CHECK_TIMEOUT:.0f} s)"
    except OSError as error:
        return False, f"cannot run /bin/sh: {error.strerror}"
    return done.returncode == 0, (done.stdout or "") + (
        "" if done.returncode == 0 else f"(exit status {done.returncode})")


def current_text(path: str) -> Optional[str]:
    try:
        with open(path) as file:
            return file.read()
    except (OSError, UnicodeDecodeError):
        return None


def install(template: TemplateSpec, text: str, environment: Mapping[str, str]) -> str:
    """Stage, check, rename. When the check fails, DEST is left untouched and the answer
    says so with the check's last lines of output; "" when DEST was replaced."""
    try:
        staged = stage(template, text)
    except OSError as error:
        raise DeclarationError(f"{template.origin}: cannot write {template.dest}: "
                               f"{error.strerror}") from None
    if template.check:
        passed, printed = run_check(template, staged, environment)
        if not passed:
            os.unlink(staged)
            lines = printed.strip().splitlines() or ["(no output)"]
            return (f"check failed, {template.dest} kept as it was: {template.check}: "
                    + " / ".join(lines[-5:]))
    os.replace(staged, template.dest)
    return ""


def write_all(specs: Sequence[TemplateSpec], environment: Mapping[str, str],
              links: Iterable[ResolvedLink]) -> None:
    """At start: render every template (any error, a failing check included, is 64 before
    COMMAND starts), then install each."""
    names = context(environment, links)
    texts = [render(template, names) for template in specs]
    for template, text in zip(specs, texts, strict=True):
        failure = install(template, text, environment)
        if failure:
            raise DeclarationError(f"{template.origin}: {failure}; COMMAND was not started")


def rewrite(specs: Sequence[TemplateSpec], environment: Mapping[str, str],
            links: Iterable[ResolvedLink], report: Callable[[str], None]) -> Optional[bool]:
    """In follow mode, after a change: render every template again and install those whose
    text changed. True: at least one changed and no check failed (apply the policy); False:
    a check failed or a template failed to render (skip it); None: nothing changed."""
    names = context(environment, links)
    changed, failed = False, False
    for template in specs:
        try:
            text = render(template, names)
            if text == current_text(template.dest):
                continue
            failure = install(template, text, environment)
        except DeclarationError as error:
            failure = f"{error}; {template.dest} kept as it was"
        installed = not failure
        report(f"template {template.id}: {failure or f'{template.dest} rendered again'}")
        changed, failed = changed or installed, failed or not installed
    return None if not (changed or failed) else changed and not failed
