"""Which of a child's variables a parent receives (``env=``), and as files (``secrets=files``).

Pure parts with hypothesis: the allowlist's parsing and selection, the variables COMMAND is
given with secrets as files, follow mode's fingerprints; the files themselves in a
temporary directory; the client library reading through them. The real containers (modes,
owners, a non-root COMMAND) are in tests/e2e/test_link_secrets.py.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linkinit
from linkinit.errors import DeclarationError
from linkinit.init import secretfiles
from linkinit.init.follow import Follower, Seen
from linkinit.init.readiness import READY, Observation
from linkinit.init.resolve import resolved_link
from linkinit.init.supervise import parse_environ
from linkinit.model import childenv
from linkinit.model.container import Port
from linkinit.model.declare import LinkSpec
from linkinit.model.envvars import ResolvedLink, link_variables

PROPERTY = settings(max_examples=100, deadline=None)
keys = st.text(alphabet="ABCXYZabc019_.:-", min_size=1, max_size=10).filter(
    lambda key: key not in (*childenv.NEVER_COPIED, "all", "none"))
values = st.text(alphabet=st.characters(blacklist_characters="\0",
                                        blacklist_categories=("Cs",)), max_size=20)
environments = st.dictionaries(keys, values, max_size=8)


def entries(environment: dict) -> list:
    return [f"{key}={value}" for key, value in environment.items()]


# -- env=: all, none or the keys ----------------------------------------------------------


@pytest.mark.parametrize("text, allowed", [
    ("all", None), ("none", ()), ("PASSWORD", ("PASSWORD",)),
    (" PASSWORD , USER ", ("PASSWORD", "USER")), ("A,A,B", ("A", "B")),
])
def test_env_values_read_as_all_none_or_keys(text: str, allowed: object) -> None:
    assert childenv.parse_env(text, "label link.redis.env") == allowed


@pytest.mark.parametrize("text, message", [
    ("", "label link.redis.env=: '' is not a variable name: give all, none or KEY[,KEY...] "
         "(e.g. env=PASSWORD,USER)"),
    ("A,,B", "label link.redis.env=: '' is not a variable name: give all, none or "
             "KEY[,KEY...] (e.g. env=PASSWORD,USER)"),
    ("MY KEY", "label link.redis.env=: 'MY KEY' is not a variable name: give all, none or "
               "KEY[,KEY...] (e.g. env=PASSWORD,USER)"),
    ("PATH", "label link.redis.env=: PATH is never copied from a child (Docker's links left "
             "HOME and PATH out); leave it out of the list"),
])
def test_a_bad_env_value_is_a_declaration_error_naming_the_label(text: str, message: str) -> None:
    with pytest.raises(DeclarationError) as raised:
        childenv.parse_env(text, "label link.redis.env=")
    assert str(raised.value) == message and raised.value.exit_status == 64


def test_secrets_is_files_or_none() -> None:
    assert childenv.parse_secrets("files", "o") == "files"
    assert childenv.parse_secrets("none", "o") == childenv.parse_secrets("", "o") == ""
    with pytest.raises(DeclarationError, match=r"^o: secrets must be files or none, not 'env'$"):
        childenv.parse_secrets("env", "o")


@PROPERTY
@given(environment=environments, named=st.lists(keys, max_size=5, unique=True))
def test_only_named_keys_are_selected_and_the_rest_are_missing(environment: dict,
                                                               named: list) -> None:
    """The selection keeps the child's order; every named key is selected or missing."""
    selected = childenv.select(entries(environment), tuple(named))
    assert [e.partition("=")[0] for e in selected] == [k for k in environment if k in named]
    lacking = childenv.missing(entries(environment), tuple(named))
    assert sorted(lacking + [e.partition("=")[0] for e in selected]) == sorted(named)
    assert childenv.select(entries(environment), childenv.ALL) == tuple(entries(environment))
    assert childenv.select(entries(environment), childenv.NONE) == ()


@PROPERTY
@given(first=st.one_of(st.none(), st.lists(keys, max_size=3)),
       second=st.one_of(st.none(), st.lists(keys, max_size=3)))
def test_two_declarations_of_one_child_widen_to_their_union(first, second) -> None:
    widest = childenv.widest(None if first is None else tuple(first),
                             None if second is None else tuple(second))
    if first is None or second is None:
        assert widest is None
    else:
        assert set(widest) == set(first) | set(second)


PARENT = {"Id": "p" * 64, "Name": "/webapp"}
CHILD = {"Id": "c" * 64, "Name": "/db1",
         "Config": {"ExposedPorts": {"6379/tcp": {}}, "Hostname": "c1",
                    "Env": ["PASSWORD=dockerpass", "USER=app", "HOME=/root", "TOKEN=t"]}}


def link_for(spec: LinkSpec) -> ResolvedLink:
    return resolved_link(spec, PARENT, Observation(READY, "running", "", CHILD, "10.0.0.2"))


def test_the_link_variables_hold_only_the_named_keys() -> None:
    """env=PASSWORD,NOPE: REDIS_ENV_PASSWORD only (NOPE is simply absent); none: no _ENV_."""
    named = link_variables(link_for(LinkSpec("redis", "db1", env=("PASSWORD", "NOPE"))))
    assert [k for k, _ in named if "_ENV_" in k] == ["REDIS_ENV_PASSWORD"]
    assert [k for k, _ in link_variables(link_for(LinkSpec("redis", "db1", env=())))
            if "_ENV_" in k] == []
    every = link_variables(link_for(LinkSpec("redis", "db1")))
    assert [k for k, _ in every if "_ENV_" in k] == [
        "REDIS_ENV_PASSWORD", "REDIS_ENV_USER", "REDIS_ENV_TOKEN"]


# -- secrets=files: what COMMAND is given ---------------------------------------------------


def test_secret_names_are_the_childs_variables_only() -> None:
    link = ResolvedLink("redis", "webapp", "10.0.0.2", (Port(6379),),
                        ("PASSWORD=x", "HOME=/h", "NAME=n"))
    assert secretfiles.secret_names(link) == ["REDIS_ENV_PASSWORD", "REDIS_ENV_NAME"]


@PROPERTY
@given(environment=environments, directory=st.sampled_from(["/run/linkinit-secrets", "/s"]))
def test_secrets_become_file_variables_in_place_and_no_value_remains(environment: dict,
                                                                    directory: str) -> None:
    """Each <ALIAS>_ENV_<KEY> becomes <ALIAS>_ENV_<KEY>_FILE=<dir>/<ALIAS>_ENV_<KEY>, in the
    same place; the other link variables are unchanged; no secret value is left."""
    link = ResolvedLink("redis", "webapp", "10.0.0.2", (Port(6379),), tuple(entries(environment)))
    given_vars = secretfiles.given_variables(link, True)
    exported = secretfiles.as_file_variables(given_vars, directory)
    plain = link_variables(link)
    names = set(secretfiles.secret_names(link))
    assert [k for k, _ in exported] == [k + "_FILE" if k in names else k for k, _ in plain]
    for (name, value), (new_name, new_value), (_, kept) in zip(plain, exported, given_vars,
                                                                 strict=True):
        if name in names:
            assert new_value == f"{directory}/{name}"
            assert kept == secretfiles.fingerprint(value)
        else:
            assert (new_name, new_value) == (name, value)
    assert secretfiles.given_variables(link, False) == plain


def test_a_changed_secret_changes_its_fingerprint_and_nothing_else() -> None:
    before = ResolvedLink("redis", "webapp", "10.0.0.2", (Port(6379),), ("PASSWORD=one",))
    after = before._replace(env=("PASSWORD=two",))
    first, second = (secretfiles.given_variables(link, True) for link in (before, after))
    assert first != second and first[:-1] == second[:-1]
    assert first[-1][1].startswith(secretfiles.MARK) and "one" not in first[-1][1]


def test_a_key_with_a_slash_is_not_exported_as_a_file() -> None:
    link = ResolvedLink("redis", "webapp", "10.0.0.2", (), ("a/b=x", "OK=y"))
    given_vars = secretfiles.given_variables(link, True)
    assert [k for k, _ in given_vars] == ["REDIS_NAME", "REDIS_ENV_OK"]
    assert secretfiles.secret_values(link) == {"REDIS_ENV_OK": "y"}


# -- the files --------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_files_are_written_0400_and_replaced_and_stale_ones_removed(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    lines: list = []
    secretfiles.prepare_directory(str(directory), lines.append, mount=False)
    assert mode(directory) == 0o700
    secretfiles.write_files(str(directory), {"R_ENV_A": "one", "R_ENV_B": "b\n"},
                            ["R_ENV_A", "R_ENV_B"])
    assert (directory / "R_ENV_A").read_text() == "one"
    assert (directory / "R_ENV_B").read_text() == "b\n"
    assert mode(directory / "R_ENV_A") == 0o400
    assert (directory / "R_ENV_A").stat().st_uid == os.geteuid()
    secretfiles.write_files(str(directory), {"R_ENV_A": "two"}, ["R_ENV_A"])
    assert sorted(os.listdir(directory)) == ["R_ENV_A"]
    assert (directory / "R_ENV_A").read_text() == "two"


def test_a_path_that_is_no_directory_is_refused_with_the_fix(tmp_path: Path) -> None:
    directory = tmp_path / "a-file"
    directory.write_text("")
    uid = os.geteuid()
    with pytest.raises(DeclarationError) as raised:
        secretfiles.prepare_directory(str(directory), [].append, mount=False)
    assert str(raised.value) == (
        f"secrets=files: cannot use {directory} (not a directory); it must be a directory "
        f"this user (uid {uid}) owns: run the container with --tmpfs "
        f"{directory}:uid={uid},mode=0700, or set LINKINIT_SECRETS_DIR to one")


def test_the_directory_is_the_default_or_an_absolute_one_given() -> None:
    assert secretfiles.secrets_dir({}) == "/run/linkinit-secrets"
    assert secretfiles.secrets_dir({"LINKINIT_SECRETS_DIR": "/tmp/s"}) == "/tmp/s"
    with pytest.raises(DeclarationError, match=r"^LINKINIT_SECRETS_DIR=s: give an absolute "
                                               r"path$"):
        secretfiles.secrets_dir({"LINKINIT_SECRETS_DIR": "s"})


def test_export_writes_the_files_and_returns_the_variables(tmp_path: Path) -> None:
    link = link_for(LinkSpec("redis", "db1", env=("PASSWORD",), secrets="files"))
    other = ResolvedLink("cache", "webapp", "10.0.0.3", (), ("KEY=plain",))
    lines: list = []
    exported = secretfiles.export([link, other], ["redis"], str(tmp_path / "s"), lines.append,
                                  mount=False)
    assert exported["REDIS_ENV_PASSWORD_FILE"] == str(tmp_path / "s" / "REDIS_ENV_PASSWORD")
    assert "REDIS_ENV_PASSWORD" not in exported and "dockerpass" not in exported.values()
    assert exported["CACHE_ENV_KEY"] == "plain"
    assert (tmp_path / "s" / "REDIS_ENV_PASSWORD").read_text() == "dockerpass"


# -- the client library reads through the file --------------------------------------------


def test_require_env_reads_a_secret_through_its_file(tmp_path: Path) -> None:
    (tmp_path / "REDIS_ENV_PASSWORD").write_text("dockerpass")
    env = {"REDIS_NAME": "/web/redis",
           "REDIS_ENV_PASSWORD_FILE": str(tmp_path / "REDIS_ENV_PASSWORD")}
    assert linkinit.require_env("redis", "PASSWORD", environ=env) == "dockerpass"
    assert linkinit.require_env("redis", "password", environ=env) == "dockerpass"


def test_a_childs_own_file_variable_is_not_read_through(tmp_path: Path) -> None:
    """The child's own PASSWORD_FILE=/run/secrets/pw, copied as REDIS_ENV_PASSWORD_FILE,
    names another file: require_env("redis", "password") is the child's PASSWORD."""
    env = {"REDIS_NAME": "/web/redis", "REDIS_ENV_PASSWORD": "p",
           "REDIS_ENV_PASSWORD_FILE": "/run/secrets/pw"}
    assert linkinit.require_env("redis", "password", environ=env) == "p"
    assert linkinit.require_env("redis", "password_file", environ=env) == "/run/secrets/pw"
    only_file = {"REDIS_NAME": "/web/redis", "REDIS_ENV_PASSWORD_FILE": "/run/secrets/pw"}
    with pytest.raises(linkinit.LinkError, match="REDIS_ENV_PASSWORD is not set"):
        linkinit.require_env("redis", "password", environ=only_file)


def test_an_unreadable_secret_file_is_a_link_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "REDIS_ENV_PASSWORD"
    env = {"REDIS_ENV_PASSWORD_FILE": str(path)}
    with pytest.raises(linkinit.LinkError) as raised:
        linkinit.require_env("redis", "PASSWORD", environ=env)
    assert str(raised.value) == (f"linkinit: REDIS_ENV_PASSWORD_FILE={path}: cannot read the "
                                 "file: No such file or directory")
    assert raised.value.variable == "REDIS_ENV_PASSWORD"


# -- follow mode rewrites the files ------------------------------------------------------


class OneChild:
    kind = None
    swarm_role = None

    def __init__(self, document: dict) -> None:
        self.document = document

    def inspect_container(self, reference: str) -> dict:
        return self.document


def test_follow_mode_rewrites_a_rotated_secret_and_keeps_no_value(tmp_path: Path) -> None:
    """A changed secret rewrites its file (atomically) and the links file names the file;
    a change to a key the parent does not receive is no change."""
    from linkinit.engine import kinds as engines

    parent = {**PARENT, "NetworkSettings": {"Networks": {"n": {"IPAddress": "10.0.0.3"}}}}
    child = {**CHILD, "State": {"Status": "running", "Running": True},
             "NetworkSettings": {"Networks": {"n": {"IPAddress": "10.0.0.2"}}}}
    engine = OneChild(child)
    engine.kind = engines.DOCKER
    spec = LinkSpec("redis", "db1", "started", env=("PASSWORD",), secrets="files")
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    first = secretfiles.given_variables(link_for(spec), True)
    hosts = tmp_path / "hosts"
    hosts.write_text("")
    follower = Follower(engine, parent, [spec], {"redis": Seen("c" * 64, tuple(first))},
                        [].append, [].append, str(tmp_path / "links"), str(hosts),
                        secrets_dir=str(secrets))
    engine.document = {**child, "Config": {**child["Config"],
                                           "Env": ["PASSWORD=dockerpass", "TOKEN=new"]}}
    assert follower.sync() == []
    engine.document = {**child, "Config": {**child["Config"], "Env": ["PASSWORD=rotated"]}}
    assert follower.sync() == ["redis"]
    assert (secrets / "REDIS_ENV_PASSWORD").read_text() == "rotated"
    assert mode(secrets / "REDIS_ENV_PASSWORD") == 0o400
    links = parse_environ((tmp_path / "links").read_bytes())
    assert links["REDIS_ENV_PASSWORD_FILE"] == str(secrets / "REDIS_ENV_PASSWORD")
    assert "rotated" not in (tmp_path / "links").read_text()
