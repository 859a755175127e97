"""Configuration from links, the pure parts: derived variables (expansion and declarations),
``address=name``, templates (declarations, rendering, atomic install, check) and what follow
mode does with them. Real containers: tests/e2e/test_link_configuration.py.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkinit.errors import DeclarationError
from linkinit.init import templates as rendering
from linkinit.init.follow import Follower, Outputs, Seen
from linkinit.init.hosts import updated_hosts
from linkinit.init.supervise import parse_environ
from linkinit.model import derived, templates
from linkinit.model.container import Port
from linkinit.model.declare import merge, parse_flags, parse_labels
from linkinit.model.declare_file import parse_yaml
from linkinit.model.envvars import ResolvedLink, link_environment
from tests.unit.test_follow_changes import PARENT, SPEC, FakeEngine, child, variables_for

NAMES = {"REDIS_PORT_6379_TCP_ADDR": "10.0.0.2", "REDIS_PORT_6379_TCP_PORT": "6379",
         "REDIS_ENV_PASSWORD": "pw", "EMPTY": ""}


def error_of(call, *args) -> str:
    with pytest.raises(DeclarationError) as raised:
        call(*args)
    assert raised.value.exit_status == 64
    return str(raised.value)


# -- derived variables ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("redis://:${REDIS_ENV_PASSWORD}@${REDIS_PORT_6379_TCP_ADDR}:"
                     "${REDIS_PORT_6379_TCP_PORT}/0", "redis://:pw@10.0.0.2:6379/0", id="url"),
        pytest.param("$$5", "$5", id="dollar-dollar-is-a-dollar"),
        pytest.param("$$${EMPTY}x", "$x", id="escape-then-variable"),
        pytest.param("$${REDIS_ENV_PASSWORD}", "${REDIS_ENV_PASSWORD}", id="escaped-reference"),
        pytest.param("a$b $ c$", "a$b $ c$", id="a-lone-dollar-stays"),
        pytest.param("", "", id="empty"),
    ],
)
def test_expand(value: str, expected: str) -> None:
    assert derived.expand(value, NAMES, "label linkinit.env.X") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("${REDIS_PASWORD}", "label linkinit.env.X: ${REDIS_PASWORD} is not a link "
                     "variable nor one of this container's variables (did you mean "
                     "REDIS_ENV_PASSWORD?); write $$ for a literal $", id="unknown-with-hint"),
        pytest.param("${ZZZ}", "label linkinit.env.X: ${ZZZ} is not a link variable nor one of "
                     "this container's variables; write $$ for a literal $", id="unknown"),
        pytest.param("x${REDIS", "label linkinit.env.X: '${' without its closing '}' in "
                     "'x${REDIS'", id="unclosed"),
        pytest.param("${1X}", "label linkinit.env.X: ${1X}: '1X' is not a variable name: use "
                     "letters, digits and '_', not starting with a digit", id="bad-name"),
    ],
)
def test_a_bad_value_is_64_naming_the_label_and_the_name(value: str, message: str) -> None:
    def run() -> None:
        derived.derive([derived.spec("X", value, "label linkinit.env.X")], NAMES, {})

    assert error_of(run) == message


def test_a_derived_value_cannot_read_another_derived_one() -> None:
    specs = [derived.spec("A", "x", "flag --env A=x"),
             derived.spec("B", "${A}", "flag --env B=${A}")]
    assert error_of(derived.derive, specs, {}, {}) == (
        "flag --env B=${A}: ${A} is another derived variable; a value may use link variables "
        "and the container's own, not other derived ones")


def test_the_containers_own_variables_are_names_and_win_over_link_variables() -> None:
    specs = [derived.spec("URL", "${HOST}:${REDIS_PORT_6379_TCP_PORT}", "o")]
    own = {"HOST": "me", "REDIS_PORT_6379_TCP_PORT": "1"}
    assert derived.derive(specs, NAMES, own) == {"URL": "me:1"}


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_doubling_every_dollar_gives_the_text_back(text: str) -> None:
    """``$$`` is how any text is written literally, whatever it holds."""
    assert derived.expand(text.replace("$", "$$"), {}, "o") == text


@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True),
                       st.text(max_size=10), min_size=1))
def test_a_reference_expands_to_the_value_whatever_it_holds(names: dict) -> None:
    """A value is inserted as it is: a ``$`` or ``${...}`` inside it is not expanded again."""
    value = "|".join(f"${{{name}}}" for name in names)
    assert derived.expand(value, names, "o") == "|".join(names.values())


def test_env_labels_flags_and_the_file_merge_by_name_the_flag_winning() -> None:
    labels = parse_labels({"link.redis": "db1", "linkinit.env.URL": "label",
                           "linkinit.env.ONLY_LABEL": "x"})
    from_file = parse_yaml("env:\n  URL: file\n  FILE: '${REDIS_PORT}'\n", "f.yaml")
    flags = parse_flags([], env=["URL=flag=1"])
    merged = merge([labels, from_file, flags])
    assert [(s.name, s.value, s.origin) for s in merged.env] == [
        ("ONLY_LABEL", "x", "label linkinit.env.ONLY_LABEL"),
        ("FILE", "${REDIS_PORT}", "f.yaml:3: env FILE"),
        ("URL", "flag=1", "flag --env URL=flag=1"),
    ]


@pytest.mark.parametrize(
    ("parse", "message"),
    [
        pytest.param(lambda: parse_labels({"linkinit.env.9X": "v"}),
                     "label linkinit.env.9X: '9X' is not a variable name: use letters, digits "
                     "and '_', not starting with a digit", id="label-bad-name"),
        pytest.param(lambda: parse_flags([], env=["NOVALUE"]),
                     "flag --env NOVALUE: expected NAME=VALUE, e.g. --env "
                     "REDIS_HOST='${REDIS_PORT_6379_TCP_ADDR}'", id="flag-without-equals"),
        pytest.param(lambda: parse_yaml("timeout: 3\nenv:\n  URL: 'x${A'\n", "f.yaml"),
                     "f.yaml:3: env URL: '${' without its closing '}' in 'x${A'",
                     id="file-line-unclosed"),
        pytest.param(lambda: parse_yaml("env:\n  URL: [a]\n", "f.yaml"),
                     "f.yaml:2: env URL: the value must be a plain string", id="file-list"),
        pytest.param(lambda: parse_yaml("env:\n  A: x\n  A: y\n", "f.yaml"),
                     "f.yaml:3: variable A is written twice (first at f.yaml:2); keep one",
                     id="file-twice"),
    ],
)
def test_a_bad_env_declaration_names_where(parse, message: str) -> None:
    assert error_of(parse) == message


# -- address=name --------------------------------------------------------------------------


def link(address: str = "", by_dns: bool = False) -> ResolvedLink:
    return ResolvedLink("redis", "webapp", "10.0.0.2", (Port(6379),), ("PASSWORD=pw",), "db1",
                        "c1", "c" * 64, address, by_dns)


def test_address_name_puts_the_alias_in_addr_and_the_urls() -> None:
    variables = link_environment([link("redis")])
    assert variables["REDIS_PORT"] == "tcp://redis:6379"
    assert variables["REDIS_PORT_6379_TCP"] == "tcp://redis:6379"
    assert variables["REDIS_PORT_6379_TCP_ADDR"] == "redis"
    assert link_environment([link()])["REDIS_PORT_6379_TCP_ADDR"] == "10.0.0.2"


def test_a_link_the_dns_answers_for_gets_no_hosts_line_and_loses_an_old_one() -> None:
    text = "127.0.0.1\tlocalhost\n10.0.0.9\tredis c1 db1\n"
    assert updated_hosts(text, [link("redis", by_dns=True)]) == "127.0.0.1\tlocalhost\n"
    assert updated_hosts(text, [link("redis")]) == "127.0.0.1\tlocalhost\n10.0.0.2\tredis c1 db1\n"


def test_the_address_attribute_from_a_label_the_file_and_its_errors() -> None:
    assert parse_labels({"link.redis": "db1", "link.redis.address": "name"}).links[0].address \
        == "name"
    assert parse_yaml("links:\n  redis: {container: db1, address: name}\n", "f").links[0] \
        .address == "name"
    assert parse_labels({"link.redis": "db1"}).links[0].address == "ip"
    assert error_of(parse_labels, {"link.redis": "db1", "link.redis.address": "dns"}) == (
        "label link.redis.address: address must be one of ip, name, not 'dns'")


# -- templates: declarations ---------------------------------------------------------------


def test_templates_from_labels_the_file_and_flags() -> None:
    labels = parse_labels({"linkinit.template.up": "/t/up.j2:/etc/up.conf",
                           "linkinit.template.up.check": "nginx -t",
                           "linkinit.template.up.mode": "0600"})
    from_file = parse_yaml(
        "templates:\n  app:\n    source: /t/app.j2\n    dest: /etc/app.conf\n"
        "    owner: www-data\n  short: /t/s.j2:/etc/s.conf\n", "f.yaml")
    flags = parse_flags([], templates=["/t/up2.j2:/etc/up.conf.2"])
    merged = merge([labels, from_file, flags]).templates
    assert merged == (
        templates.TemplateSpec("up", "/t/up.j2", "/etc/up.conf", "nginx -t", 0o600, "",
                               "label linkinit.template.up"),
        templates.TemplateSpec("app", "/t/app.j2", "/etc/app.conf", "", None, "www-data",
                               "f.yaml:2: template app"),
        templates.TemplateSpec("short", "/t/s.j2", "/etc/s.conf", "", None, "",
                               "f.yaml:6: template short"),
        templates.TemplateSpec("/etc/up.conf.2", "/t/up2.j2", "/etc/up.conf.2", "", None, "",
                               "flag --template /t/up2.j2:/etc/up.conf.2"),
    )


@pytest.mark.parametrize(
    ("parse", "message"),
    [
        pytest.param(lambda: parse_labels({"linkinit.template.x": "up.j2:/etc/up"}),
                     "label linkinit.template.x: expected SRC:DEST, two absolute paths in the "
                     "container, e.g. /etc/linkinit/upstream.conf.j2:/etc/nginx/conf.d/"
                     "upstream.conf", id="relative-source"),
        pytest.param(lambda: parse_labels({"linkinit.template.x.check": "true"}),
                     "label linkinit.template.x.check has no linkinit.template.x=SRC:DEST "
                     "label to go with it", id="attribute-alone"),
        pytest.param(lambda: parse_labels({"linkinit.template.x": "/a:/b",
                                           "linkinit.template.x.colour": "red"}),
                     "label linkinit.template.x.colour: unknown template attribute 'colour' "
                     "(known: check, mode, owner)", id="unknown-attribute"),
        pytest.param(lambda: parse_labels({"linkinit.template.x": "/a:/b",
                                           "linkinit.template.x.mode": "rw"}),
                     "label linkinit.template.x.mode: mode must be octal permissions, e.g. "
                     "0644, not 'rw'", id="bad-mode"),
        pytest.param(lambda: parse_yaml("templates:\n  x: {source: /a, dest: /b, when: now}\n",
                                        "f.yaml"),
                     "f.yaml:2: template x: unknown field 'when' (known: source, dest, check, "
                     "mode, owner)", id="file-unknown-field"),
        pytest.param(lambda: merge([parse_labels({"linkinit.template.a": "/a:/same"}),
                                    parse_flags([], templates=["/b:/same"])]),
                     "label linkinit.template.a and flag --template /b:/same both write /same; "
                     "keep one", id="one-dest-twice"),
    ],
)
def test_a_bad_template_declaration_names_where(parse, message: str) -> None:
    assert error_of(parse) == message


# -- templates: rendering and installing ---------------------------------------------------


def template(tmp_path: Path, text: str, check: str = "", mode=None) -> templates.TemplateSpec:
    source = tmp_path / "src" / "t.j2"
    source.parent.mkdir(exist_ok=True)
    source.write_text(text)
    return templates.spec("t", f"{source}:{tmp_path}/out/sub/t.conf", "label linkinit.template.t",
                          check, mode)


def names_for(address: str = "") -> dict:
    return templates.context({"REDIS_PORT_6379_TCP_ADDR": "10.0.0.2", "URL": "u"},
                             [link(address)])


def test_a_template_sees_variables_and_links(tmp_path: Path) -> None:
    spec = template(tmp_path, "{{ REDIS_PORT_6379_TCP_ADDR }} {{ URL }} "
                              "{{ links.redis.address }} {{ links.redis.ip }} "
                              "{{ links.redis.port }} {{ links.redis.ports[0].proto }} "
                              "{{ links.redis.env.PASSWORD }} {{ links.redis.name }}\n")
    assert rendering.render(spec, names_for("redis")) == \
        "10.0.0.2 u redis 10.0.0.2 6379 tcp pw db1\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("a\n{{ REDIS_ADDR }}\n", "{}:2: 'REDIS_ADDR' is undefined",
                     id="undefined-name"),
        pytest.param("a\nb\n{{ links.redis.nope }}\n",
                     "{}:3: 'dict object' has no attribute 'nope'", id="undefined-attribute"),
        pytest.param("{% if %}\n", "{}:1: Expected an expression, got 'end of statement block'",
                     id="syntax"),
        pytest.param("{{ ''.__class__.__mro__ }}\n",
                     "{}:1: access to attribute '__class__' of 'str' object is unsafe.",
                     id="sandboxed"),
    ],
)
def test_a_template_error_names_the_file_its_line_and_what(tmp_path: Path, text: str,
                                                           message: str) -> None:
    spec = template(tmp_path, text)
    assert error_of(rendering.render, spec, names_for()) == \
        "label linkinit.template.t: " + message.format(spec.source)


def test_a_missing_source_is_named(tmp_path: Path) -> None:
    spec = templates.spec("t", f"{tmp_path}/none.j2:{tmp_path}/out", "flag --template x")
    assert error_of(rendering.render, spec, {}) == \
        f"flag --template x: template {tmp_path}/none.j2: no such file"


def test_write_all_makes_the_directory_and_sets_the_mode(tmp_path: Path) -> None:
    spec = template(tmp_path, "{{ URL }}\n", mode="0640")
    rendering.write_all([spec], {"URL": "u"}, [])
    assert Path(spec.dest).read_text() == "u\n"
    assert stat.S_IMODE(os.stat(spec.dest).st_mode) == 0o640
    assert os.listdir(os.path.dirname(spec.dest)) == ["t.conf"]  # no staged file left


def test_the_check_sees_the_new_file_and_a_failure_keeps_the_old(tmp_path: Path) -> None:
    check = 'cat "$LINKINIT_TEMPLATE_FILE"; test "$(cat "$LINKINIT_TEMPLATE_FILE")" = good'
    spec = template(tmp_path, "{{ URL }}\n", check=check)
    os.makedirs(os.path.dirname(spec.dest))
    Path(spec.dest).write_text("old\n")
    lines: List[str] = []
    assert rendering.rewrite([spec], {"URL": "bad"}, [], lines.append) is False
    assert Path(spec.dest).read_text() == "old\n"
    assert lines == [f"template t: check failed, {spec.dest} kept as it was: {check}: "
                     "bad / (exit status 1)"]
    assert rendering.rewrite([spec], {"URL": "good"}, [], lines.append) is True
    assert Path(spec.dest).read_text() == "good\n"
    assert rendering.rewrite([spec], {"URL": "good"}, [], lines.append) is None  # unchanged
    assert os.listdir(os.path.dirname(spec.dest)) == ["t.conf"]


def test_an_owner_by_name_and_number_and_an_unknown_one(tmp_path: Path) -> None:
    """``user[:group]``: root by name and number; an unknown user is 64, nothing left."""
    for owner in ("root", "0:0", "root:root"):
        spec = template(tmp_path, "x\n")._replace(owner=owner)
        rendering.write_all([spec], {}, [])
        assert (os.stat(spec.dest).st_uid, os.stat(spec.dest).st_gid) == (0, 0)
    spec = template(tmp_path, "x\n")._replace(owner="no-such-user-here")
    assert error_of(rendering.write_all, [spec], {}, []) == \
        "label linkinit.template.t.owner: no user 'no-such-user-here' in this container"
    assert os.listdir(os.path.dirname(spec.dest)) == ["t.conf"]


def test_a_failing_check_at_start_is_64_and_writes_nothing(tmp_path: Path) -> None:
    spec = template(tmp_path, "x\n", check="echo no; exit 3")
    message = error_of(rendering.write_all, [spec], {}, [])
    assert message == (f"label linkinit.template.t: check failed, {spec.dest} kept as it "
                       "was: echo no; exit 3: no / (exit status 3); COMMAND was not started")
    assert not os.path.exists(spec.dest)


# -- follow mode ---------------------------------------------------------------------------


SERVER = "server {{ REDIS_PORT_6379_TCP_ADDR }};\n"


class Rig:
    """A follower with one template (its check passing unless /refuse exists) and one
    derived variable; a move of the child is a change."""

    def __init__(self, tmp_path: Path, text: str, first: str) -> None:
        self.engine = FakeEngine()
        self.engine.containers["db1"] = child()
        self.refuse = tmp_path / "refuse"
        self.spec = template(tmp_path, text, check=f"test ! -e {self.refuse}")
        os.makedirs(os.path.dirname(self.spec.dest))
        Path(self.spec.dest).write_text(first)  # as rendered at start
        self.notified: List[list] = []
        self.lines: List[str] = []
        self.links = tmp_path / "links"
        outputs = Outputs([derived.spec("HOST", "${REDIS_PORT_6379_TCP_ADDR}", "o")],
                          [self.spec], {"OWN": "1"}, {"HOST": "10.5.0.2"})
        hosts = tmp_path / "hosts"
        hosts.write_text("")
        given = {"redis": Seen("c" * 64, variables_for("10.5.0.2"))}
        self.follower = Follower(self.engine, PARENT, [SPEC], given, self.lines.append,
                                 self.notified.append, str(self.links), str(hosts), outputs)

    def move(self, ip: str) -> None:
        self.engine.containers["db1"] = child(ip=ip)
        assert self.follower.sync() == ["redis"]


def test_follow_mode_recomputes_derived_variables_into_the_links_file(tmp_path: Path) -> None:
    rig = Rig(tmp_path, SERVER, "server 10.5.0.2;\n")
    rig.move("10.5.0.7")
    assert parse_environ(rig.links.read_bytes())["HOST"] == "10.5.0.7"


def test_a_changed_rendering_with_a_passing_check_notifies_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path, SERVER, "server 10.5.0.2;\n")
    rig.move("10.5.0.7")
    assert Path(rig.spec.dest).read_text() == "server 10.5.0.7;\n"
    assert rig.notified == [["redis"]]


def test_a_failing_check_keeps_the_file_and_skips_the_policy(tmp_path: Path) -> None:
    rig = Rig(tmp_path, SERVER, "server 10.5.0.2;\n")
    rig.refuse.write_text("")
    rig.move("10.5.0.7")
    assert Path(rig.spec.dest).read_text() == "server 10.5.0.2;\n"
    assert rig.notified == []
    assert any("check failed" in line for line in rig.lines)


def test_an_unchanged_rendering_applies_no_policy(tmp_path: Path) -> None:
    """The template does not use the address: the move changes no file, so no signal."""
    rig = Rig(tmp_path, "port {{ links.redis.port }}\n", "port 6379\n")
    rig.move("10.5.0.7")
    assert rig.notified == []


def test_without_templates_a_change_notifies_as_before(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "x\n", "x\n")
    rig.follower.outputs = Outputs()
    rig.move("10.5.0.7")
    assert rig.notified == [["redis"]]
