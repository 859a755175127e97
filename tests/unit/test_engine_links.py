"""The links the Engine knows for a container (HostConfig.Links, each network's Links) read
from its inspect as declarations: one per alias, compose's extra names dropped, a label
replacing or tuning one alias."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkinit.errors import DeclarationError
from linkinit.model.container import declared_links
from linkinit.model.declare import Declaration, LinkSpec, merge, parse_labels
from linkinit.model.docker_links import engine_links, read_engine_links, users_aliases


def inspect(host_links=None, networks=None, labels=None) -> dict:
    return {"Name": "/webapp", "Config": {"Labels": labels or {}},
            "HostConfig": {"Links": host_links},
            "NetworkSettings": {"Networks": {name: {"Links": links}
                                             for name, links in (networks or {}).items()}}}


COMPOSE = {"com.docker.compose.project": "shop", "com.docker.compose.container-number": "1"}


@pytest.mark.parametrize(("document", "expected"), [
    pytest.param(inspect(["/db1:/webapp/redis"], {"bridge": None}), [("redis", "db1")],
                 id="default-bridge"),
    pytest.param(inspect(None, {"n": ["db1:redis", "3f2a9c:cache"]}),
                 [("redis", "db1"), ("cache", "3f2a9c")], id="user-network"),
    pytest.param(inspect(None, {"n": ["db1"]}), [("db1", "db1")], id="no-alias"),
    pytest.param(inspect(None, {"shop_default": ["shop-db-1:redis", "shop-db-1:db-1",
                                                 "shop-db-1:shop-db-1"]}, COMPOSE),
                 [("redis", "shop-db-1")], id="compose-three-entries"),
    pytest.param(inspect(None, {"shop_default": ["shop-db-1:db", "shop-db-1:db-1",
                                                 "shop-db-1:shop-db-1"]}, COMPOSE),
                 [("db", "shop-db-1")], id="compose-service-name-only"),
    pytest.param(inspect(None, {"shop_default": ["shop-db-1:db-1", "shop-db-1:db-1",
                                                 "shop-db-1:shop-db-1"]}, COMPOSE),
                 [("db-1", "shop-db-1")], id="compose-alias-is-an-extra-name"),
    pytest.param(inspect(None, {"shop_default": ["shop-db-1:shop-db-1", "cache:cache"]}, None),
                 [("shop-db-1", "shop-db-1"), ("cache", "cache")], id="not-compose-kept-whole"),
    pytest.param(inspect(["/db1:/webapp/redis"], {"n": ["db1:redis"]}), [("redis", "db1")],
                 id="one-link-twice"),
    pytest.param({}, [], id="nothing"),
])
def test_engine_links_read_from_an_inspect(document, expected):
    """Each place the Engine keeps a link gives (alias, child), one per alias."""
    specs = engine_links(document)
    assert [(spec.alias, spec.child) for spec in specs] == expected
    assert all(spec.wait == "listening" and not spec.optional for spec in specs)


def test_an_alias_linked_to_two_children_is_an_error_naming_both():
    """Two networks linking one alias to two containers: the user must choose."""
    document = inspect(None, {"a": ["db1:redis"], "b": ["db2:redis"]})
    with pytest.raises(DeclarationError) as error:
        engine_links(document)
    assert str(error.value) == (
        "Engine link db1:redis on network a and Engine link db2:redis on network b: the Engine "
        "links alias 'redis' to two containers; declare the one meant with a label, e.g. "
        "link.redis=db2")


def test_an_alias_linkinit_cannot_use_is_named():
    with pytest.raises(DeclarationError, match=r"^Engine link db1:my\.redis on network n: alias"):
        engine_links(inspect(None, {"n": ["db1:my.redis"]}))


def test_labels_beat_engine_links_and_a_bare_wait_label_tunes_one():
    """flags > environment > file > labels > the Engine's links; link.<alias>.wait alone
    applies to the Engine's link of that alias."""
    document = inspect(["/db1:/webapp/redis", "/db2:/webapp/cache"])
    known = engine_links(document)
    labels = {"link.cache": "db3", "link.redis.wait": "started"}
    merged = merge([Declaration(known), parse_labels(labels, known)])
    assert {spec.alias: (spec.child, spec.wait) for spec in merged.links} == {
        "redis": ("db1", "started"), "cache": ("db3", "listening")}
    flags = Declaration((LinkSpec("redis", "db9"),))
    merged = merge([Declaration(known), parse_labels(labels, known), flags])
    assert {spec.alias: spec.child for spec in merged.links} == {"redis": "db9", "cache": "db3"}


def test_declared_links_for_the_host_tools_include_the_engines():
    """ls, guard and the proxy read one list: labels, then Engine links no label replaces."""
    document = inspect(["/db1:/webapp/redis"], {"n": ["db2:cache", "db3:my.bad"]},
                       {"link.cache": "db4", "link.redis.optional": "true"})
    found = {alias: spec for alias, spec in declared_links(document)}
    assert found["redis"].child == "db1" and found["redis"].optional
    assert found["cache"].child == "db4"
    assert isinstance(found["my.bad"], DeclarationError)
    assert [alias for alias, _ in read_engine_links(document)] == ["redis", "cache", "my.bad"]


names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@given(project=names, service=names, alias=names, number=st.integers(1, 20))
def test_compose_keeps_exactly_the_users_alias(project, service, alias, number):
    """Whatever the names, compose's three entries give back the one alias the user wrote."""
    extra = [f"{service}-{number}", f"{project}-{service}-{number}"]
    assert users_aliases([alias, *extra], project, str(number)) == [alias]
