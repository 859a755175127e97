"""The command line: options, their defaults, and bad usage as exit status 64."""

from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkinit import cli
from linkinit.cli import Options, parse_arguments, run
from linkinit.errors import EX_USAGE, DeclarationError, EngineUnreachable, UsageError
from linkinit.init import health, start
from linkinit.init.options import ENVIRONMENT, apply_environment, parse_signal, settle
from linkinit.init.start import resolve_environment
from tests.support.kubelet import REDIS_SERVICE
from tests.support.paths import ROOT


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
        (["--kill-orphans", "--wait-all", "--", "a"], {"kill_orphans": True, "wait_all": True}),
        (["--stop-delay", "4", "--notify", "command", "--", "a"],
         {"stop_delay": 4.0, "notify": "command"}),
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
        (["--timeout", "-1", "--", "a"],
         "--timeout must be a finite number of seconds >= 0, not -1.0"),
        (["--timeout", "inf", "--", "a"],
         "--timeout must be a finite number of seconds >= 0, not inf"),
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


# -- options from the environment -------------------------------------------------------------


def settled(argv, environ):
    """parse, then the environment, then the PID-1 values checked: as run() does."""
    options = apply_environment(parse_arguments(argv), environ)
    return options, settle(options)


@pytest.mark.parametrize(
    ("environ", "changed"),
    [
        ({"LINKINIT_TIMEOUT": "2.5"}, {"timeout": 2.5}),
        ({"LINKINIT_LINKS": "db1:redis, db2,"}, {"env_links": ["db1:redis", "db2"]}),
        ({"LINKINIT_CONFIG": "/x.yaml"}, {"config": "/x.yaml"}),
        ({"LINKINIT_QUIET": "1"}, {"quiet": True}),
        ({"LINKINIT_QUIET": "0"}, {}),
        ({"LINKINIT_REQUIRE_ENGINE": "true"}, {"require_engine": True}),
        ({"LINKINIT_GROUP": "yes"}, {"group": True}),
        ({"LINKINIT_GRACE": "1"}, {"grace": 1.0}),
        ({"LINKINIT_KEEP_ORPHANS": "on"}, {"keep_orphans": True}),
        ({"LINKINIT_KILL_ORPHANS": "1"}, {"kill_orphans": True}),
        ({"LINKINIT_STOP_DELAY": "2.5"}, {"stop_delay": 2.5}),
        ({"LINKINIT_WAIT_ALL": "true"}, {"wait_all": True}),
        ({"LINKINIT_NOTIFY": "command"}, {"notify": "command"}),
        ({"LINKINIT_REWRITE": "TERM:QUIT,10:0"}, {"rewrite": ["TERM:QUIT", "10:0"]}),
        ({"LINKINIT_REMAP_EXIT": "143, 3"}, {"remap_exit": ["143", "3"]}),
        ({"LINKINIT_PDEATHSIG": "KILL"}, {"pdeathsig": "KILL"}),
        ({"LINKINIT_TIMEOUT": "", "LINKINIT_QUIET": " "}, {}),  # empty: unset
        ({"LINKINIT_UNKNOWN": "x", "LINKINIT_CONTAINER": "me"}, {}),  # not options
    ],
)
def test_every_option_can_come_from_the_environment(environ, changed):
    """With ENTRYPOINT ["linkinit", "--"] options come from LINKINIT_* variables, each into
    its own field only; the bare form reads them too."""
    options, _ = settled(["--", "app"], environ)
    assert vars(options) == {**vars(Options(["app"])), **changed}


@pytest.mark.parametrize(
    ("argv", "environ", "field", "value"),
    [
        (["--timeout", "3"], {"LINKINIT_TIMEOUT": "9"}, "timeout", 3.0),
        (["--grace", "0"], {"LINKINIT_GRACE": "9"}, "grace", 0.0),
        (["--stop-delay", "1"], {"LINKINIT_STOP_DELAY": "9"}, "stop_delay", 1.0),
        (["--notify", "linkinit"], {"LINKINIT_NOTIFY": "command"}, "notify", "linkinit"),
        (["--config", "/a"], {"LINKINIT_CONFIG": "/b"}, "config", "/a"),
        (["--pdeathsig", "TERM"], {"LINKINIT_PDEATHSIG": "KILL"}, "pdeathsig", "TERM"),
        (["-q"], {"LINKINIT_QUIET": "0"}, "quiet", True),
        (["--link", "a:x"], {"LINKINIT_LINKS": "b:x"}, "link", ["a:x"]),
    ],
)
def test_a_flag_wins_over_its_variable(argv, environ, field, value):
    """Flags > environment (> file > labels, in the resolver)."""
    options, _ = settled([*argv, "--", "app"], environ)
    assert getattr(options, field) == value


def test_rewrites_from_flags_win_per_signal_and_remaps_add_up():
    """A signal rewritten by variable and by flag takes the flag's; other rewrites and every
    remapped status of both are kept."""
    _, pid1 = settled(
        ["--rewrite", "TERM:INT", "--remap-exit", "3", "--", "app"],
        {"LINKINIT_REWRITE": "TERM:QUIT,USR1:0", "LINKINIT_REMAP_EXIT": "4"},
    )
    assert pid1.rewrite == {signal.SIGTERM: signal.SIGINT, signal.SIGUSR1: 0}
    assert pid1.remap_exit == {3, 4}


@pytest.mark.parametrize(
    ("text", "number"),
    [("15", 15), ("TERM", 15), ("SIGTERM", 15), ("term", 15), (" hup ", 1),
     ("RTMIN+2", signal.SIGRTMIN + 2), ("SIGRTMAX", signal.SIGRTMAX)],
)
def test_signals_are_named_or_numbered(text, number):
    """--pdeathsig, --rewrite and their variables take 15, TERM, SIGTERM or RTMIN+N."""
    assert parse_signal(text, "x") == number


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--grace", "-1"], {}, "--grace must be a finite number of seconds >= 0, not -1.0"),
        (["--rewrite", "TERM"], {},
         "--rewrite TERM: expected SIGNAL:SIGNAL, e.g. TERM:QUIT (or TERM:0 to drop TERM)"),
        (["--rewrite", "KILL:TERM"], {},
         "--rewrite KILL:TERM: signal 9 never reaches linkinit to be rewritten (KILL and STOP "
         "cannot be caught; CHLD is linkinit's own)"),
        (["--rewrite", "TERM:NOPE"], {},
         f"--rewrite TERM:NOPE: 'NOPE' is not a signal (a name as TERM, or 1-{signal.SIGRTMAX})"),
        (["--rewrite", "0:TERM"], {},
         f"--rewrite 0:TERM: '0' is not a signal (a name as TERM, or 1-{signal.SIGRTMAX})"),
        (["--remap-exit", "256"], {}, "--remap-exit 256: expected an exit status from 0 to 255"),
        (["--remap-exit", "-1"], {}, "--remap-exit -1: expected an exit status from 0 to 255"),
        (["--pdeathsig", "0"], {},
         f"--pdeathsig 0: '0' is not a signal (a name as TERM, or 1-{signal.SIGRTMAX})"),
        ([], {"LINKINIT_TIMEOUT": "soon"},
         "LINKINIT_TIMEOUT=soon: expected a finite number of seconds >= 0, e.g. 30 or 2.5"),
        ([], {"LINKINIT_GRACE": "-2"},
         "LINKINIT_GRACE=-2: expected a finite number of seconds >= 0, e.g. 30 or 2.5"),
        ([], {"LINKINIT_QUIET": "maybe"},
         "LINKINIT_QUIET=maybe: expected 1 or 0 (or true/false, yes/no, on/off)"),
        ([], {"LINKINIT_REQUIRE_ENGINE": "2"},
         "LINKINIT_REQUIRE_ENGINE=2: expected 1 or 0 (or true/false, yes/no, on/off)"),
        ([], {"LINKINIT_GROUP": "x"},
         "LINKINIT_GROUP=x: expected 1 or 0 (or true/false, yes/no, on/off)"),
        ([], {"LINKINIT_KEEP_ORPHANS": "x"},
         "LINKINIT_KEEP_ORPHANS=x: expected 1 or 0 (or true/false, yes/no, on/off)"),
        ([], {"LINKINIT_KILL_ORPHANS": "x"},
         "LINKINIT_KILL_ORPHANS=x: expected 1 or 0 (or true/false, yes/no, on/off)"),
        ([], {"LINKINIT_WAIT_ALL": "x"},
         "LINKINIT_WAIT_ALL=x: expected 1 or 0 (or true/false, yes/no, on/off)"),
        ([], {"LINKINIT_STOP_DELAY": "-1"},
         "LINKINIT_STOP_DELAY=-1: expected a finite number of seconds >= 0, e.g. 30 or 2.5"),
        (["--stop-delay", "-1"], {},
         "--stop-delay must be a finite number of seconds >= 0, not -1.0"),
        ([], {"LINKINIT_NOTIFY": "systemd"},
         "LINKINIT_NOTIFY=systemd: expected linkinit (linkinit sends READY=1) or command "
         "(COMMAND gets NOTIFY_SOCKET and notifies by itself)"),
        (["--notify", "x"], {},
         "--notify x: expected linkinit (linkinit sends READY=1) or command (COMMAND gets "
         "NOTIFY_SOCKET and notifies by itself)"),
        ([], {"LINKINIT_REWRITE": "TERM:QUIT,STOP:0"},
         "LINKINIT_REWRITE=TERM:QUIT,STOP:0: signal 19 never reaches linkinit to be rewritten "
         "(KILL and STOP cannot be caught; CHLD is linkinit's own)"),
        ([], {"LINKINIT_REMAP_EXIT": "1,x"},
         "LINKINIT_REMAP_EXIT=1,x: expected an exit status from 0 to 255"),
        ([], {"LINKINIT_PDEATHSIG": "SIGFOO"},
         f"LINKINIT_PDEATHSIG=SIGFOO: 'SIGFOO' is not a signal (a name as TERM, or 1-"
         f"{signal.SIGRTMAX})"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_flag_or_variable(argv, environ, message):
    """Every bad flag or variable value is a UsageError (64) whose message names it."""
    with pytest.raises(UsageError) as raised:
        settled([*argv, "--", "app"], environ)
    assert str(raised.value) == message


def test_run_returns_64_with_one_line_for_a_bad_variable():
    """A bad LINKINIT_* value stops linkinit before anything runs: one line, status 64."""
    stderr = io.StringIO()
    assert run(["--", "true"], {"LINKINIT_GRACE": "soon"}, io.StringIO(), stderr) == EX_USAGE
    assert stderr.getvalue() == (
        "linkinit: LINKINIT_GRACE=soon: expected a finite number of seconds >= 0, e.g. 30 or 2.5\n"
    )


def test_bare_form_with_variables_imports_no_argparse():
    """ENTRYPOINT ["linkinit", "--"] with LINKINIT_* variables set still skips argparse (and
    typing): they cost milliseconds of every start."""
    code = (
        "import sys\n"
        "from linkinit.cli import parse_arguments, apply_environment, settle\n"
        "env = {'LINKINIT_TIMEOUT': '3', 'LINKINIT_REWRITE': 'TERM:QUIT', 'LINKINIT_GROUP': '1',"
        " 'LINKINIT_REMAP_EXIT': '3', 'LINKINIT_PDEATHSIG': 'TERM', 'LINKINIT_LINKS': 'a:b'}\n"
        "settle(apply_environment(parse_arguments(['--', 'true']), env))\n"
        "print(sorted({'argparse', 'typing'} & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          timeout=30, cwd=str(ROOT))
    assert done.stdout == "[]\n", done.stderr


def test_help_names_every_variable():
    """--help ends by naming every LINKINIT_* variable an option can come from."""
    out = io.StringIO()
    with pytest.raises(SystemExit), contextlib.redirect_stdout(out):
        parse_arguments(["--help"])
    text = " ".join(out.getvalue().split())
    for variable, _, _ in ENVIRONMENT:
        assert variable in text


# -- no Engine socket ---------------------------------------------------------------------------

NO_SOCKET = {"DOCKER_HOST": "unix:///nonexistent/docker.sock", "PATH": "/usr/bin:/bin"}
NOTICE = (
    "linkinit: no Docker Engine socket at /nonexistent/docker.sock and no links declared by "
    "file, flag or LINKINIT_LINKS: running COMMAND without links (--require-engine or "
    "LINKINIT_REQUIRE_ENGINE=1 makes this exit 69)\n"
)
UNREACHABLE = (
    "no Docker Engine socket at /nonexistent/docker.sock: DOCKER_HOST names it: set "
    "DOCKER_HOST to the Engine's socket (unix:///var/run/docker.sock) or unset it"
)


@pytest.fixture
def no_default_config(monkeypatch):
    monkeypatch.setattr(start, "DEFAULT_CONFIG", "/nonexistent/linkinit.yaml")


@pytest.fixture(autouse=True)
def private_health_state(monkeypatch, tmp_path):
    """linkinit health's state goes to tmp_path: a start here must not touch the host's /run."""
    monkeypatch.setattr(health, "STATE_FILE", str(tmp_path / "health.json"))


@pytest.mark.usefixtures("no_default_config")
def test_no_socket_and_nothing_declared_runs_command_as_a_plain_init(capsys):
    """No socket and no link from a file, a flag or LINKINIT_LINKS: COMMAND gets the
    environment unchanged, and one notice says so."""
    options = apply_environment(parse_arguments(["--", "app"]), NO_SOCKET)
    assert resolve_environment(options, NO_SOCKET) == (NO_SOCKET, [], None)
    assert capsys.readouterr().err == NOTICE


@pytest.mark.usefixtures("no_default_config")
@pytest.mark.parametrize(
    ("argv", "environ"), [(["-q"], {}), ([], {"LINKINIT_QUIET": "1"})]
)
def test_plain_init_notice_is_quiet_with_q(capsys, argv, environ):
    """-q (or LINKINIT_QUIET=1) silences the notice too."""
    env = {**NO_SOCKET, **environ}
    options = apply_environment(parse_arguments([*argv, "--", "app"]), env)
    assert resolve_environment(options, env) == (env, [], None)
    assert capsys.readouterr().err == ""


@pytest.mark.usefixtures("no_default_config")
@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        (["--require-engine"], {}),
        ([], {"LINKINIT_REQUIRE_ENGINE": "1"}),
        (["--link", "db1:redis"], {}),
        ([], {"LINKINIT_LINKS": "db1:redis"}),
    ],
)
def test_no_socket_is_69_when_required_or_links_are_declared(argv, environ):
    """--require-engine, LINKINIT_REQUIRE_ENGINE=1, or a link by flag or variable: no socket
    is exit 69 with the message it always had."""
    env = {**NO_SOCKET, **environ}
    options = apply_environment(parse_arguments([*argv, "--", "app"]), env)
    with pytest.raises(EngineUnreachable) as raised:
        resolve_environment(options, env)
    assert str(raised.value) == UNREACHABLE
    assert raised.value.exit_status == 69


@pytest.mark.usefixtures("no_default_config")
def test_print_env_without_an_engine_in_a_pod_prints_its_services(capsys):
    """In a pod (the kubelet's service variables), --print-env needs no Engine: one notice."""
    env = {**NO_SOCKET, **REDIS_SERVICE}
    options = apply_environment(parse_arguments(["--print-env"]), env)
    assert resolve_environment(options, env, in_a_pod=True) == (env, [], None)
    assert capsys.readouterr().err == (
        "linkinit: no Docker Engine socket at /nonexistent/docker.sock: printing only the "
        "Kubernetes service variables\n"
    )


def test_no_socket_with_a_file_declaring_links_is_69(tmp_path):
    """Links in the YAML file (here --config) with no socket: 69, not a plain init."""
    config = tmp_path / "links.yaml"
    config.write_text("links:\n  redis: db1\n")
    options = apply_environment(parse_arguments(["--config", str(config), "--", "app"]),
                                NO_SOCKET)
    with pytest.raises(EngineUnreachable) as raised:
        resolve_environment(options, NO_SOCKET)
    assert str(raised.value) == UNREACHABLE


@pytest.mark.usefixtures("no_default_config")
def test_a_bad_linkinit_links_entry_is_a_declaration_error_naming_it():
    """LINKINIT_LINKS entries are read as --link values; a bad one names the variable."""
    env = {**NO_SOCKET, "LINKINIT_LINKS": "db1:re.dis"}
    options = apply_environment(parse_arguments(["--", "app"]), env)
    with pytest.raises(DeclarationError) as raised:
        resolve_environment(options, env)
    assert str(raised.value) == (
        "LINKINIT_LINKS entry db1:re.dis: alias 're.dis' is not valid: use letters, digits, "
        "'_' and '-' only"
    )


@pytest.mark.usefixtures("no_default_config")
@pytest.mark.parametrize(("argv", "environ"), [
    ([], {}), (["--link", "db1:redis"], {}), ([], {"LINKINIT_LINKS": "db1:redis"})])
def test_print_env_with_no_engine_to_ask_is_69_naming_what_it_could_not_read(argv, environ):
    """--print-env needs the Engine (the links it knows are declarations too): no socket is 69
    whatever is declared, never the plain init's empty output."""
    env = {**NO_SOCKET, **environ}
    options = apply_environment(parse_arguments([*argv, "--print-env"]), env)
    with pytest.raises(EngineUnreachable) as raised:
        resolve_environment(options, env)
    assert str(raised.value) == (
        "--print-env: cannot read this container's links (DOCKER_HOST=unix:///nonexistent/"
        "docker.sock names no socket), so there are no link variables to print: DOCKER_HOST "
        "names it: set DOCKER_HOST to the Engine's socket (unix:///var/run/docker.sock) or "
        "unset it")
    assert raised.value.exit_status == 69


@pytest.mark.usefixtures("no_default_config")
def test_print_env_in_a_pod_without_an_engine_prints_the_kubelets_services():
    """In a Kubernetes pod there is no Engine to ask: --print-env still prints the services."""
    env = {**NO_SOCKET, "REDIS_SERVICE_HOST": "10.0.0.7", "REDIS_SERVICE_PORT": "6379",
           "REDIS_PORT": "tcp://10.0.0.7:6379"}
    stdout = io.StringIO()
    assert run(["--print-env", "-q"], env, stdout, io.StringIO()) == 0
    assert "REDIS_SERVICE_HOST=10.0.0.7\n" in stdout.getvalue()


_SIMPLE_WORDS = st.sampled_from(["--print-env", "-q", "--quiet", "--format", "json", "shell",
                                 "env", "xml", "--format=json", "--format=", "--", "true",
                                 "--timeout", "3", "-g"])


@settings(max_examples=300)
@given(st.lists(_SIMPLE_WORDS, max_size=6))
def test_print_env_without_argparse_parses_as_argparse_does(argv):
    """``--print-env``, ``-q`` and ``--format F`` skip argparse (~15 ms): whatever that path
    accepts, argparse parses to the same options; the rest goes to argparse."""
    simple = cli._simple_arguments(argv)
    if simple is None:
        return
    parser_options = parse_arguments_with_argparse(argv)
    assert vars(simple) == vars(parser_options)


def parse_arguments_with_argparse(argv):
    """What argparse makes of argv (the fast path switched off)."""
    original = cli._simple_arguments
    cli._simple_arguments = lambda _argv: None
    try:
        return parse_arguments(argv)
    finally:
        cli._simple_arguments = original


def test_print_env_alone_is_parsed_without_argparse():
    """The control for the property above: ``--print-env`` does take the fast path."""
    simple = cli._simple_arguments(["-q", "--print-env", "--format", "shell"])
    assert simple is not None and (simple.print_env, simple.quiet, simple.format) == (
        True, True, "shell")


def test_exit_now_flushes_the_standard_streams_and_keeps_the_status():
    """The init exits without the interpreter's teardown, but what it printed is out and the
    status is the one it returned (its low 8 bits, as exit(2) keeps)."""
    code = ("import sys; from linkinit.cli import exit_now; print('out', end=''); "
            "print('err', end='', file=sys.stderr); exit_now(int(sys.argv[1]))")
    for status, expected in ((0, 0), (75, 75), (256 + 3, 3)):
        done = subprocess.run([sys.executable, "-c", code, str(status)], capture_output=True,
                              text=True, timeout=60, cwd=ROOT)
        assert (done.returncode, done.stdout, done.stderr) == (expected, "out", "err")
