"""The command line: options, their defaults, and bad usage as exit status 64."""

from __future__ import annotations

import io

import pytest

from linkinit.cli import Options, parse_arguments, run
from linkinit.errors import EX_USAGE, UsageError


def test_bare_entrypoint_form_takes_the_defaults():
    """``linkinit -- COMMAND`` (the ENTRYPOINT form) is COMMAND with every default."""
    assert vars(parse_arguments(["--", "python", "app.py"])) == vars(Options(["python", "app.py"]))


def test_argparse_and_the_bare_form_share_their_defaults():
    """An option given changes only itself: the rest are the same defaults either way."""
    parsed = vars(parse_arguments(["-q", "--", "true"]))
    assert parsed == {**vars(Options(["true"])), "quiet": True}


@pytest.mark.parametrize(
    ("argv", "changed"),
    [
        (["--link", "db1:redis", "--link", "db2", "--", "a"], {"link": ["db1:redis", "db2"]}),
        (["--timeout", "2.5", "--", "a"], {"timeout": 2.5}),
        (["--config", "/x.yaml", "--", "a"], {"config": "/x.yaml"}),
        (["-g", "--grace", "1", "--", "a"], {"group": True, "grace": 1.0}),
        (["--", "--print-env"], {}),
        (["a", "--quiet"], {}),
    ],
)
def test_options_set_only_their_own_fields(argv, changed):
    """Each option lands in its field; what follows ``--`` (or COMMAND) is COMMAND's."""
    parsed = vars(parse_arguments(argv))
    command = argv[argv.index("--") + 1:] if "--" in argv else argv
    assert parsed == {**vars(Options(command)), **changed}


def test_print_env_needs_no_command():
    """--print-env alone is complete; its format defaults to env."""
    parsed = parse_arguments(["--print-env", "--format", "json"])
    assert (parsed.print_env, parsed.format, parsed.command) == (True, "json", [])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no COMMAND given: linkinit [options] -- COMMAND [ARG...]"),
        (["--quiet"], "no COMMAND given: linkinit [options] -- COMMAND [ARG...]"),
        (["--timeout", "-1", "--", "a"], "--timeout must be >= 0, not -1.0"),
        (["--format", "xml", "--print-env"],
         "argument --format: invalid choice: 'xml' (choose from 'env', 'shell', 'json') "
         "(see linkinit --help)"),
        (["--bogus", "--", "a"], "unrecognized arguments: --bogus (see linkinit --help)"),
    ],
)
def test_bad_usage_is_a_usage_error_naming_the_problem(argv, message):
    """Bad usage raises UsageError (exit 64), never argparse's exit 2."""
    with pytest.raises(UsageError) as raised:
        parse_arguments(argv)
    assert str(raised.value) == message


def test_run_prints_one_line_and_returns_64_on_bad_usage():
    """run() turns bad usage into one 'linkinit:' line on stderr and status 64."""
    stderr = io.StringIO()
    assert run(["--timeout", "soon"], {}, io.StringIO(), stderr) == EX_USAGE
    assert stderr.getvalue() == (
        "linkinit: argument --timeout: invalid float value: 'soon' (see linkinit --help)\n"
    )
