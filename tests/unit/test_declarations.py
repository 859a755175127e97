"""Link declarations: labels, the YAML file and flags become link specs; flags win.

Error messages are asserted exactly: they are the interface that tells a user which label,
file line or flag to edit.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkinit.errors import EX_USAGE, DeclarationError, LinkinitError
from linkinit.model.declare import (
    DEFAULT_WAIT,
    Declaration,
    LinkSpec,
    check_child,
    merge,
    parse_flags,
    parse_labels,
    parse_link_flag,
)
from linkinit.model.declare_file import parse_yaml

PROPERTY = settings(max_examples=100, deadline=None)


def declaration_error(call, *args) -> str:
    with pytest.raises(DeclarationError) as caught:
        call(*args)
    assert caught.value.exit_status == EX_USAGE
    return caught.value.message


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------


def test_a_link_label_declares_a_child_under_an_alias_with_the_defaults():
    """link.<alias>=<child>: wait 'listening', not optional, origin the label."""
    assert parse_labels({"link.redis": "db1"}) == Declaration(
        (LinkSpec("redis", "db1", "listening", False, "label link.redis"),), None
    )
    assert DEFAULT_WAIT == "listening"


def test_wait_and_optional_labels_set_the_links_attributes():
    """link.<alias>.wait and link.<alias>.optional apply to the link of that alias."""
    got = parse_labels(
        {"link.redis": "db1", "link.redis.wait": "healthy", "link.redis.optional": "true"}
    )
    assert got.links == (LinkSpec("redis", "db1", "healthy", True, "label link.redis"),)


@pytest.mark.parametrize("mode", ["started", "healthy", "listening", "none"])
def test_every_documented_wait_mode_is_accepted(mode):
    """started, healthy, listening and none are the wait modes."""
    assert parse_labels({"link.a": "c", "link.a.wait": mode}).links[0].wait == mode


def test_the_timeout_label_sets_the_declarations_timeout():
    """linkinit.timeout=<seconds> is read as a float; without it the timeout is unset."""
    assert parse_labels({"link.a": "c", "linkinit.timeout": "30"}).timeout == 30.0
    assert parse_labels({"link.a": "c"}).timeout is None
    assert parse_labels({"linkinit.timeout": "2.5"}) == Declaration((), 2.5)


def test_several_links_are_read_from_one_label_map():
    """Each link.<alias> label is one link."""
    got = parse_labels({"link.redis": "db1", "link.pg": "postgres-1", "link.pg.wait": "none"})
    assert {(s.alias, s.child, s.wait) for s in got.links} == {
        ("redis", "db1", "listening"),
        ("pg", "postgres-1", "none"),
    }


def test_the_child_and_wait_values_are_trimmed():
    """Spaces around a label's value are not part of the name."""
    got = parse_labels({"link.redis": " db1 ", "link.redis.wait": " healthy "})
    assert (got.links[0].child, got.links[0].wait) == ("db1", "healthy")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(text, True, id=f"true-{text}") for text in ("true", "1", "yes", "on", "TRUE")
    ]
    + [pytest.param(text, False, id=f"false-{text or 'empty'}")
       for text in ("false", "0", "no", "off", "")],
)
def test_optional_reads_the_usual_spellings_of_a_boolean(text, expected):
    """true/1/yes/on and false/0/no/off (any case, or empty) are booleans."""
    got = parse_labels({"link.a": "c", "link.a.optional": text})
    assert got.links[0].optional is expected


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        pytest.param(
            {"link.my db": "db1"},
            "label link.my db: alias 'my db' is not valid: use letters, digits, '_' and '-' only",
            id="alias-with-a-space",
        ),
        pytest.param(
            {"link.": "db1"},
            "label link.: alias '' is not valid: use letters, digits, '_' and '-' only",
            id="empty-alias",
        ),
        pytest.param(
            {"link.my.db": "db1"},
            "label link.my.db: unknown link attribute 'db' "
            "(known: wait, optional, address, env, secrets, port)",
            id="alias-with-a-dot-reads-as-an-attribute",
        ),
        pytest.param(
            {"link.redis": "db1", "link.redis.colour": "red"},
            "label link.redis.colour: unknown link attribute 'colour' "
            "(known: wait, optional, address, env, secrets, port)",
            id="unknown-attribute",
        ),
        pytest.param(
            {"link.redis.wait": "healthy"},
            "label link.redis.wait has no link.redis=<child> label to go with it "
            "(nor a --link of that alias the Engine knows)",
            id="wait-without-its-link",
        ),
        pytest.param(
            {"link.redis.optional": "true", "link.db": "x"},
            "label link.redis.optional has no link.redis=<child> label to go with it "
            "(nor a --link of that alias the Engine knows)",
            id="optional-without-its-link",
        ),
        pytest.param(
            {"link.Redis": "db1", "link.redis.wait": "healthy"},
            "label link.redis.wait has no link.redis=<child> label to go with it "
            "(nor a --link of that alias the Engine knows)",
            id="aliases-are-case-sensitive",
        ),
        pytest.param(
            {"link.redis": "db1", "link.redis.wait": "soon"},
            "label link.redis.wait: wait must be one of started, healthy, listening, none, "
            "redis, postgres, mysql, http, http:PATH, http:PATH:STATUS, exec:CMD, tcp, "
            "not 'soon'",
            id="bad-wait-mode",
        ),
        pytest.param(
            {"link.redis": "db1", "link.redis.optional": "maybe"},
            "label link.redis.optional: expected true or false, not 'maybe'",
            id="bad-boolean",
        ),
        pytest.param(
            {"link.redis": "db1", "linkinit.timeout": "soon"},
            "label linkinit.timeout: timeout must be a number of seconds, not 'soon'",
            id="timeout-not-a-number",
        ),
        pytest.param(
            {"linkinit.timeout": "-5"},
            "label linkinit.timeout: timeout must be a finite number of seconds >= 0, not '-5'",
            id="negative-timeout",
        ),
        pytest.param(
            {"linkinit.timeout": "nan"},
            "label linkinit.timeout: timeout must be a finite number of seconds >= 0, not 'nan'",
            id="nan-timeout",
        ),
        pytest.param(
            {"linkinit.timeout": "inf"},
            "label linkinit.timeout: timeout must be a finite number of seconds >= 0, not 'inf'",
            id="infinite-timeout",
        ),
        pytest.param(
            {"link.redis": ""},
            "label link.redis=: name the child container, e.g. link.redis=db1",
            id="empty-child",
        ),
        pytest.param(
            {"link.redis": "   "},
            "label link.redis=   : name the child container, e.g. link.redis=db1",
            id="blank-child",
        ),
    ],
)
def test_a_bad_label_is_a_declaration_error_naming_the_label(labels, message):
    """Every label error names the label to fix (exit status 64)."""
    assert declaration_error(parse_labels, labels) == message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("0", 0.0, id="zero"),
        pytest.param("60", 60.0, id="integer"),
        pytest.param("2.5", 2.5, id="fraction"),
        pytest.param(" 7 ", 7.0, id="spaces"),
        pytest.param("1e2", 100.0, id="exponent"),
    ],
)
def test_a_timeout_is_a_non_negative_number_of_seconds(text, seconds):
    """linkinit.timeout accepts any finite number >= 0."""
    assert parse_labels({"linkinit.timeout": text}).timeout == seconds


def test_labels_of_other_tools_are_ignored():
    """Only link.* and linkinit.* labels are read; compose's and others' are not."""
    labels = {
        "com.docker.compose.project": "demo",
        "maintainer": "someone",
        "link": "not-a-link-label",
        "linker.x": "y",
        "org.opencontainers.image.title": "app",
        "link.redis": "db1",
    }
    assert parse_labels(labels).links == (LinkSpec("redis", "db1", origin="label link.redis"),)


def test_no_labels_declare_nothing():
    """An empty label map is an empty declaration."""
    assert parse_labels({}) == Declaration()


ALIAS_CHARS = "abcxyzABCXYZ0189_-"
aliases = st.text(alphabet=ALIAS_CHARS, min_size=1, max_size=16)
children = st.from_regex(r"[abcdef0123456789][abcdef0123456789_.-]{0,19}", fullmatch=True)
waits = st.sampled_from(["started", "healthy", "listening", "none"])


env_keys = st.lists(
    st.text(alphabet="ABCXYZabc019_.:-", min_size=1, max_size=12).filter(
        lambda key: key not in ("HOME", "PATH", "all", "none")),
    max_size=4, unique=True)


@PROPERTY
@given(alias=aliases, child=children, wait=waits, optional=st.booleans(),
       env=st.one_of(st.none(), env_keys), secrets=st.sampled_from(["", "files"]))
def test_any_valid_alias_round_trips_through_labels(alias, child, wait, optional, env, secrets):
    """Letters, digits, '_' and '-' make an alias; labels give it back unchanged, with the
    keys its env= names (all, none or a list) and its secrets mode."""
    labels = {
        f"link.{alias}": child,
        f"link.{alias}.wait": wait,
        f"link.{alias}.optional": str(optional).lower(),
        f"link.{alias}.env": "all" if env is None else ",".join(env) or "none",
        f"link.{alias}.secrets": secrets or "none",
    }
    assert parse_labels(labels).links == (
        LinkSpec(alias, child, wait, optional, f"label link.{alias}",
                 env=None if env is None else tuple(env), secrets=secrets),
    )


@PROPERTY
@given(
    others=st.dictionaries(
        st.text(max_size=20).filter(lambda k: not k.startswith(("link.", "linkinit."))),
        st.text(max_size=10),
        max_size=6,
    )
)
def test_any_label_outside_the_link_and_linkinit_namespaces_is_ignored(others):
    """Labels not starting with link. or linkinit. change nothing."""
    declared = {"link.redis": "db1", "linkinit.timeout": "5"}
    assert parse_labels({**others, **declared}) == parse_labels(declared)


# ---------------------------------------------------------------------------------------------
# The YAML file
# ---------------------------------------------------------------------------------------------

FULL = """\
# linkinit links
links:
  redis:
    container: db1
    wait: healthy
    optional: true
  pg: postgres-1
timeout: 30
"""


def test_the_yaml_file_reads_full_and_short_link_forms_and_the_timeout():
    """links: {alias: {container, wait, optional}} or alias: child; origins name path:line."""
    assert parse_yaml(FULL, "/etc/linkinit.yaml") == Declaration(
        (
            LinkSpec("redis", "db1", "healthy", True, "/etc/linkinit.yaml:3: link redis"),
            LinkSpec("pg", "postgres-1", "listening", False, "/etc/linkinit.yaml:7: link pg"),
        ),
        30.0,
    )


def test_a_yaml_link_without_wait_or_optional_gets_the_defaults():
    """The full form with only container: waits 'listening' and is not optional."""
    got = parse_yaml("links:\n  redis: {container: db1}\n", "f.yaml")
    assert got.links == (LinkSpec("redis", "db1", "listening", False, "f.yaml:2: link redis"),)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("yes", True, id="yes"),
        pytest.param("true", True, id="true"),
        pytest.param("false", False, id="false"),
        pytest.param("off", False, id="off"),
    ],
)
def test_yaml_optional_accepts_yaml_and_label_booleans(value, expected):
    """optional: in the file reads the same spellings as the label."""
    got = parse_yaml(f"links:\n  a: {{container: c, optional: {value}}}\n", "f.yaml")
    assert got.links[0].optional is expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("# nothing here\n", id="only-comments"),
        pytest.param("\n\n", id="blank-lines"),
    ],
)
def test_an_empty_yaml_file_declares_nothing(text):
    """A file with no content is an empty declaration, not an error."""
    assert parse_yaml(text, "f.yaml") == Declaration()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "links:\n  redis: db1\ncolour: red\n",
            "f.yaml:3: unknown key 'colour' (known: links, env, templates, timeout, on_change)",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "links:\n  redis:\n    container: db1\n    colour: red\n",
            "f.yaml:2: link redis: unknown field 'colour' "
            "(known: container, wait, optional, address, env, secrets, port)",
            id="unknown-link-field",
        ),
        pytest.param(
            "links:\n  redis: db1\n  my.db: db2\n",
            "f.yaml:3: link my.db: alias 'my.db' is not valid: "
            "use letters, digits, '_' and '-' only",
            id="alias-with-a-dot",
        ),
        pytest.param(
            "links:\n\n  redis:\n    container: db1\n    wait: soon\n",
            "f.yaml:3: link redis.wait: wait must be one of started, healthy, listening, none, "
            "redis, postgres, mysql, http, http:PATH, http:PATH:STATUS, exec:CMD, tcp, "
            "not 'soon'",
            id="bad-wait-names-the-links-line",
        ),
        pytest.param(
            "links:\n  redis: {container: db1, optional: maybe}\n",
            "f.yaml:2: link redis.optional: expected true or false, not 'maybe'",
            id="bad-boolean",
        ),
        pytest.param(
            "links:\n  redis: {wait: healthy}\n",
            "f.yaml:2: link redis: name the child, e.g. redis: {container: db1}",
            id="no-container",
        ),
        pytest.param(
            "links:\n  redis:\n",
            "f.yaml:2: link redis: name the child, e.g. redis: {container: db1}",
            id="empty-short-form",
        ),
        pytest.param(
            "links:\n  redis:\n    container: [db1, db2]\n",
            "f.yaml:3: container must be a plain value",
            id="container-not-a-scalar",
        ),
        pytest.param(
            "timeout: soon\n",
            "f.yaml:1: timeout: timeout must be a number of seconds, not 'soon'",
            id="bad-timeout",
        ),
        pytest.param(
            "- redis\n- pg\n", "f.yaml:1: the file must be a mapping", id="file-is-a-list"
        ),
        pytest.param(
            "# header\nlinks:\n  - redis\n", "f.yaml:3: links must be a mapping", id="links-a-list"
        ),
        pytest.param(
            "links:\n  redis: [db1]\n", "f.yaml:2: link redis must be a mapping", id="link-a-list"
        ),
    ],
)
def test_a_bad_yaml_file_is_a_declaration_error_naming_the_line(text, message):
    """Every file error names path:line of the key that is wrong (exit status 64)."""
    assert declaration_error(parse_yaml, text, "f.yaml") == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "links:\n  redis: db1\n   pg: x: y\n",
            "f.yaml:3: not valid YAML: mapping values are not allowed here",
            id="bad-indentation",
        ),
        pytest.param(
            "links: {redis: db1\n",
            "f.yaml:2: not valid YAML: expected ',' or '}', but got '<stream end>'",
            id="unclosed-flow-mapping",
        ),
        pytest.param(
            "links:\n\tredis: db1\n",
            "f.yaml:2: not valid YAML: found character '\\t' that cannot start any token",
            id="tab-indentation",
        ),
    ],
)
def test_invalid_yaml_is_a_declaration_error_naming_the_line(text, message):
    """A parse error names the line PyYAML stopped at and its problem."""
    assert declaration_error(parse_yaml, text, "f.yaml") == message


# ---------------------------------------------------------------------------------------------
# Flags
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "alias", "child"),
    [
        pytest.param("db1:redis", "redis", "db1", id="child-colon-alias"),
        pytest.param("db1", "db1", "db1", id="child-alone-is-its-own-alias"),
        pytest.param("db1:", "db1", "db1", id="empty-alias-is-the-child"),
        pytest.param("demo-db1-1:db", "db", "demo-db1-1", id="compose-name"),
        pytest.param("3f2a9c:cache", "cache", "3f2a9c", id="id-prefix"),
    ],
)
def test_a_link_flag_uses_dockers_child_colon_alias_syntax(flag, alias, child):
    """--link <child>[:<alias>]: the alias defaults to the child's name, as in Docker."""
    assert parse_link_flag(flag) == LinkSpec(alias, child, origin=f"flag --link {flag}")


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        pytest.param(
            "", "flag --link : expected <child>[:<alias>], e.g. --link db1:redis", id="empty"
        ),
        pytest.param(
            ":redis",
            "flag --link :redis: expected <child>[:<alias>], e.g. --link db1:redis",
            id="no-child",
        ),
        pytest.param(
            "db1:my.db",
            "flag --link db1:my.db: alias 'my.db' is not valid: "
            "use letters, digits, '_' and '-' only",
            id="alias-with-a-dot",
        ),
    ],
)
def test_a_bad_link_flag_is_a_declaration_error_naming_the_flag(flag, message):
    """The error quotes the flag as typed."""
    assert declaration_error(parse_link_flag, flag) == message


def test_flags_make_a_declaration_with_their_timeout():
    """parse_flags keeps the flags' order and the --timeout value."""
    got = parse_flags(["db1:redis", "pg"], timeout=12.0)
    assert [(s.alias, s.child) for s in got.links] == [("redis", "db1"), ("pg", "pg")]
    assert got.timeout == 12.0
    assert parse_flags([]) == Declaration()


# ---------------------------------------------------------------------------------------------
# Merging: labels < file < flags
# ---------------------------------------------------------------------------------------------

LABELS = parse_labels(
    {"link.redis": "db1", "link.redis.wait": "healthy", "link.redis.optional": "true",
     "link.pg": "pg-label", "linkinit.timeout": "10"}
)
FILE = parse_yaml("links:\n  redis: db2\n  cache: memcached\n", "f.yaml")
FLAGS = parse_flags(["db3:redis"])


def by_alias(declaration: Declaration) -> dict:
    return {spec.alias: spec for spec in declaration.links}


def test_the_file_replaces_a_labels_link_of_the_same_alias_whole():
    """A file link for 'redis' replaces the label's, wait and optional included."""
    got = by_alias(merge([LABELS, FILE]))
    assert got["redis"] == LinkSpec("redis", "db2", "listening", False, "f.yaml:2: link redis")
    assert got["pg"].child == "pg-label"
    assert got["cache"].child == "memcached"


def test_flags_win_over_the_file_and_the_labels():
    """A --link for 'redis' replaces both the file's and the label's."""
    got = by_alias(merge([LABELS, FILE, FLAGS]))
    assert got["redis"] == LinkSpec("redis", "db3", origin="flag --link db3:redis")
    assert set(got) == {"redis", "pg", "cache"}


@pytest.mark.parametrize(
    ("timeouts", "expected"),
    [
        pytest.param((10.0, None, None), 10.0, id="labels-only"),
        pytest.param((10.0, 20.0, None), 20.0, id="file-over-labels"),
        pytest.param((10.0, 20.0, 5.0), 5.0, id="flag-over-file"),
        pytest.param((10.0, None, 0.0), 0.0, id="a-zero-flag-still-wins"),
        pytest.param((None, None, None), None, id="none-set"),
    ],
)
def test_the_strongest_source_that_sets_a_timeout_wins(timeouts, expected):
    """The timeout follows the same precedence as links: flags, then file, then labels."""
    assert merge([Declaration((), t) for t in timeouts]).timeout == expected


def test_merging_nothing_is_an_empty_declaration():
    """No sources, no links, no timeout."""
    assert merge([]) == Declaration()


def test_two_aliases_with_one_variable_prefix_are_rejected_across_sources():
    """db-1 (label) and DB_1 (flag) would both write DB_1_*: refused, naming both."""
    labels = parse_labels({"link.db-1": "a"})
    flags = parse_flags(["b:DB_1"])
    assert declaration_error(merge, [labels, flags]) == (
        "label link.db-1 and flag --link b:DB_1: aliases 'db-1' and 'DB_1' "
        "both make variables DB_1_*; rename one"
    )


def test_two_aliases_with_one_variable_prefix_are_rejected_in_one_file():
    """The file's own links are checked, and the lines are named in file order."""
    text = "links:\n  db-1: a\n  DB_1: b\n"
    assert declaration_error(parse_yaml, text, "f.yaml") == (
        "f.yaml:2: link db-1 and f.yaml:3: link DB_1: aliases 'db-1' and 'DB_1' "
        "both make variables DB_1_*; rename one"
    )


def test_two_aliases_with_one_variable_prefix_are_rejected_among_labels():
    """Labels alone can clash too; merging them refuses."""
    labels = parse_labels({"link.db-1": "a", "link.DB_1": "b"})
    message = declaration_error(merge, [labels])
    assert message == (
        "label link.DB_1 and label link.db-1: aliases 'DB_1' and 'db-1' "
        "both make variables DB_1_*; rename one"
    )


def test_replacing_an_alias_by_the_same_alias_is_no_clash():
    """One alias declared in two sources is a replacement, not two links."""
    got = merge([parse_labels({"link.db-1": "a"}), parse_flags(["b:db-1"])])
    assert [(s.alias, s.child) for s in got.links] == [("db-1", "b")]


def test_a_specs_prefix_is_the_variable_prefix_of_its_alias():
    """LinkSpec.prefix upper-cases the alias and turns '-' into '_'."""
    assert LinkSpec("name-server", "dns").prefix == "NAME_SERVER"


def test_a_declaration_error_exits_with_status_64():
    """Bad declarations are usage errors (EX_USAGE): retrying will not help."""
    assert issubclass(DeclarationError, LinkinitError)
    assert DeclarationError("x").exit_status == EX_USAGE == 64


def test_an_empty_links_key_in_the_file_declares_no_links():
    """``links:`` with nothing under it is an empty list of links, not an error."""
    assert parse_yaml("links:\ntimeout: 3\n", "f.yaml") == Declaration((), 3.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "links:\n  redis: db1\n  cache: mc\n  redis: db2\n",
            "/etc/linkinit.yaml:4: link redis is written twice "
            "(first at /etc/linkinit.yaml:2); keep one",
            id="alias",
        ),
        pytest.param(
            "timeout: 5\nlinks: {redis: db1}\ntimeout: 9\n",
            "/etc/linkinit.yaml:3: key timeout is written twice "
            "(first at /etc/linkinit.yaml:1); keep one",
            id="top-level-key",
        ),
    ],
)
def test_a_key_written_twice_in_the_file_is_named_with_both_lines(text, message):
    """YAML would keep the last silently; linkinit names the line of each (exit 64)."""
    with pytest.raises(DeclarationError) as caught:
        parse_yaml(text, "/etc/linkinit.yaml")
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("value", "policy"),
    [("none", "none"), ("hosts", "hosts"), ("restart", "restart"), ("exit", "exit"),
     ("signal:HUP", "signal:HUP"), ("signal:SIGUSR1", "signal:USR1"), ("signal:hup", "signal:HUP"),
     ("signal:1", "signal:HUP"), (" signal:TERM ", "signal:TERM")],
)
def test_follow_policies_are_read_from_a_label(value, policy):
    """``linkinit.on-change``: the five policies; a signal by name (with or without SIG, any
    case) or number, kept as its short name."""
    assert parse_labels({"linkinit.on-change": value}).on_change == policy


@pytest.mark.parametrize("value", ["", "always", "signal", "signal:", "signal:NOPE", "signal:999",
                                   "restart:HUP", "hosts:1"])
def test_a_bad_policy_is_a_declaration_error_naming_its_source(value):
    with pytest.raises(DeclarationError) as caught:
        parse_labels({"linkinit.on-change": value})
    assert caught.value.message == (
        "label linkinit.on-change: on-change must be one of none, hosts, signal:<SIG>, restart, "
        f"exit (e.g. signal:HUP), not {value.strip()!r}"
    )
    assert caught.value.exit_status == EX_USAGE


def test_the_policy_in_the_file_names_its_line():
    with pytest.raises(DeclarationError, match=r"^f.yaml:2: on_change: on-change must be"):
        parse_yaml("links: {redis: db1}\non_change: sometimes\n", "f.yaml")
    assert parse_yaml("on_change: signal:HUP\n", "f.yaml").on_change == "signal:HUP"


def test_the_strongest_source_that_sets_a_policy_wins():
    labels = parse_labels({"linkinit.on-change": "hosts"})
    file = parse_yaml("on_change: restart\n", "f.yaml")
    assert merge([labels, file, Declaration()]).on_change == "restart"
    assert merge([labels, Declaration()]).on_change == "hosts"
    assert merge([Declaration()]).on_change is None


# -- references that cannot name a container ------------------------------------------------

REFERENCE_CHARS = string.ascii_letters + string.digits + "_.-"


@given(child=st.from_regex(r"/?[A-Za-z0-9][A-Za-z0-9_.-]{0,254}", fullmatch=True))
def test_a_name_id_or_alias_is_accepted_as_a_child(child):
    """Docker's container name rule, up to 255 characters (IDs and aliases keep it too)."""
    assert check_child(child, "label link.redis") == child


too_long = st.from_regex(r"[a-z0-9][a-z0-9_.-]{255,400}", fullmatch=True)
with_a_stranger = st.builds(
    lambda name, char, at: name[:at] + char + name[at:],
    st.from_regex(r"[a-z0-9]{1,30}", fullmatch=True),
    st.characters(blacklist_characters=REFERENCE_CHARS + "/", blacklist_categories=("Cs",)),
    st.integers(0, 30),
)


@given(child=st.one_of(too_long, with_a_stranger))
def test_anything_else_is_refused_naming_the_origin_in_a_short_message(child):
    with pytest.raises(DeclarationError) as raised:
        check_child(child, "label link.redis")
    message = str(raised.value)
    assert message.startswith("label link.redis: the child ")
    assert len(message) < 300


def test_a_10000_character_reference_is_refused_at_once_shortened():
    """The message says how long it is and shows only its start."""
    with pytest.raises(DeclarationError) as raised:
        parse_labels({"link.redis": "a" * 10_000})
    assert str(raised.value) == (
        "label link.redis: the child '" + "a" * 40 + "... (10000 characters)' is 10000 "
        "characters long: a container name, ID or network alias has at most 255"
    )


@pytest.mark.parametrize(
    ("parse", "value", "message"),
    [
        (parse_link_flag, "db 1:redis",
         "flag --link db 1:redis: the child 'db 1' cannot name a container: use its name, ID "
         "or network alias (letters, digits, '_', '.' and '-', starting with a letter or digit)"),
        (parse_link_flag, "x" * 300 + ":redis",
         "flag --link " + "x" * 40 + "... (306 characters): the child '" + "x" * 40
         + "... (300 characters)' is 300 characters long: a container name, ID or network "
         "alias has at most 255"),
    ],
    ids=["space", "long-flag-shortened"],
)
def test_a_bad_reference_in_a_flag_names_the_flag(parse, value, message):
    with pytest.raises(DeclarationError) as raised:
        parse(value)
    assert str(raised.value) == message


def test_a_bad_reference_in_the_file_names_its_line():
    with pytest.raises(DeclarationError) as raised:
        parse_yaml("links:\n  redis: {container: 'db1;rm'}\n", "/etc/linkinit.yaml")
    assert str(raised.value).startswith(
        "/etc/linkinit.yaml:2: link redis: the child 'db1;rm' cannot name a container")


def test_the_output_label_prefixes_are_the_derived_and_template_modules_own():
    """declare names them too (so that a container declaring neither never imports those
    modules and their regular expressions): the names must be the same."""
    from linkinit.model import declare, derived, templates

    assert declare.OUTPUT_LABELS == (derived.LABEL_PREFIX, templates.LABEL_PREFIX)
