"""The proxy cuts a child's environment to what the parent's declaration allows.

``env_redaction`` is pure: inspect documents, service and task specs in, the same with
``Env`` cut out. The real proxy serving them to a real parent is in
tests/e2e/test_proxy_env.py.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from linkinit import env_redaction

PROPERTY = settings(max_examples=100, deadline=None)
keys = st.text(alphabet="ABCXYZabc019_", min_size=1, max_size=8)
environments = st.dictionaries(keys, st.text(max_size=12), max_size=8)
allowlists = st.one_of(st.none(), st.lists(keys, max_size=4, unique=True).map(tuple))


def env_of(environment: dict) -> list:
    return [f"{key}={value}" for key, value in environment.items()]


def keys_of(entries: list) -> list:
    return [entry.partition("=")[0] for entry in entries]


def document(environment: dict) -> dict:
    return {"Id": "c" * 64, "Name": "/db1", "State": {"Running": True},
            "Config": {"Env": env_of(environment), "Labels": {"a": "b"}, "Image": "redis"}}


@PROPERTY
@given(environment=environments, allowed=allowlists)
def test_an_inspect_keeps_exactly_the_allowed_keys_and_everything_else(environment, allowed):
    """Config.Env holds the allowed keys the child has, in its order; nothing else changes."""
    original = document(environment)
    cut = env_redaction.container(original, allowed)
    expected = list(environment) if allowed is None else [k for k in environment if k in allowed]
    assert keys_of(cut["Config"]["Env"]) == expected
    assert {**cut, "Config": {**cut["Config"], "Env": None}} == \
        {**original, "Config": {**original["Config"], "Env": None}}
    assert original == document(environment)  # the kept answer is not changed in place


@PROPERTY
@given(environment=environments, allowed=allowlists)
def test_a_served_inspect_body_shows_no_value_of_a_key_not_allowed(environment, allowed):
    body = json.dumps(document(environment)).encode()
    served = env_redaction.container_body((("c" * 64, allowed),), "c" * 64, body)
    if allowed is None:
        assert served is body  # not parsed, not rewritten
    shown = json.loads(served)["Config"]["Env"]
    assert set(keys_of(shown)) <= set(environment if allowed is None else allowed)


def test_the_callers_own_inspect_and_an_unlisted_id_are_unchanged():
    body = json.dumps(document({"SECRET": "x"})).encode()
    env = (("d" * 64, ("A",)),)
    assert env_redaction.container_body(env, "c" * 64, body) is body


def test_a_body_that_is_not_a_json_object_is_never_served_uncut():
    env = (("c" * 64, ("A",)),)
    assert env_redaction.container_body(env, "c" * 64, b"SECRET=x") == b"{}"
    assert env_redaction.container_body(env, "c" * 64, b"[1]") == b"{}"


def service(environment: dict) -> dict:
    spec = {"Name": "db", "TaskTemplate": {"ContainerSpec": {"Image": "redis",
                                                             "Env": env_of(environment)}}}
    return {"ID": "s" * 25, "Spec": spec, "PreviousSpec": json.loads(json.dumps(spec))}


@PROPERTY
@given(environment=environments, allowed=allowlists)
def test_a_service_spec_and_its_previous_spec_are_cut(environment, allowed):
    cut = env_redaction.service(service(environment), allowed)
    expected = list(environment) if allowed is None else [k for k in environment if k in allowed]
    for spec in ("Spec", "PreviousSpec"):
        assert keys_of(cut[spec]["TaskTemplate"]["ContainerSpec"]["Env"]) == expected
        assert cut[spec]["TaskTemplate"]["ContainerSpec"]["Image"] == "redis"


def test_a_service_without_a_container_spec_env_is_served_as_it_is():
    bare = {"ID": "s" * 25, "Spec": {"Name": "db", "TaskTemplate": {"ContainerSpec": {}}}}
    assert env_redaction.service(bare, ("A",)) == bare


def test_tasks_are_cut_by_what_the_caller_allows_of_their_service():
    def task(service_id: str) -> dict:
        return {"ID": "t", "ServiceID": service_id,
                "Spec": {"ContainerSpec": {"Env": ["A=1", "SECRET=2"]}}}

    cut = env_redaction.tasks((("s1", ("A",)),), [task("s1"), task("s2")])
    assert [t["Spec"]["ContainerSpec"]["Env"] for t in cut] == [["A=1"], ["A=1", "SECRET=2"]]


def parent(labels: dict, cmd: list = (), env: list = ()) -> dict:
    return {"Id": "p" * 64, "Name": "/web",
            "Config": {"Labels": labels, "Cmd": list(cmd), "Env": list(env)}}


def test_what_a_parent_allows_comes_from_its_labels_and_defaults_to_all():
    allowed = env_redaction.declared_env(parent(
        {"link.redis": "db1", "link.redis.env": "PASSWORD", "link.cache": "mc",
         "link.none": "quiet", "link.none.env": "none", "link.bad": "x", "link.bad.env": "PATH"},
        cmd=["linkinit", "--link", "flagged:f", "--", "app"], env=["LINKINIT_LINKS=listed"]))
    assert allowed == {"db1": ("PASSWORD",), "mc": None, "quiet": (), "flagged": None,
                       "listed": None}


def test_a_child_linked_twice_shows_the_union():
    allowed = env_redaction.declared_env(parent(
        {"link.a": "db1", "link.a.env": "USER", "link.b": "db1", "link.b.env": "PASSWORD"}))
    assert allowed == {"db1": ("USER", "PASSWORD")}
    assert env_redaction.widen({"id": ("USER",)}, "id", None) is None
    assert env_redaction.widen({}, "id", ("A",)) == ("A",)
