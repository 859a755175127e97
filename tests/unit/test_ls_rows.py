"""``linkinit ls`` rows, computed from canned inspect documents (no Engine needed).

The documents carry the fields ``docker inspect`` returns that ls reads: Id, Name,
Config.Image, Config.Labels, State and NetworkSettings.Networks.<net>.Aliases.
"""

from __future__ import annotations

import io
import json
from typing import Dict, List, Optional

import pytest

from linkinit.errors import EX_UNAVAILABLE, EX_USAGE
from linkinit.host import ls


def container(
    name: str,
    cid: str,
    image: str = "redis-image",
    status: str = "running",
    networks: Optional[Dict[str, List[str]]] = None,
    labels: Optional[Dict[str, str]] = None,
    health: Optional[str] = None,
) -> dict:
    """An inspect document; ``cid`` is padded to 64 hex digits; aliases get the short ID."""
    cid = cid.ljust(64, "0")
    state: dict = {"Status": status, "Running": status in ("running", "paused")}
    if health:
        state["Health"] = {"Status": health, "FailingStreak": 0, "Log": []}
    nets = {}
    for net, aliases in (networks if networks is not None else {"bridge": []}).items():
        extra = [cid[:12]] if net not in ("bridge", "host", "none") else []
        nets[net] = {"Aliases": [*aliases, *extra] or None, "IPAddress": "172.17.0.2"}
    return {
        "Id": cid,
        "Name": "/" + name,
        "Image": "sha256:" + "f" * 64,
        "Config": {"Image": image, "Labels": labels or {}},
        "State": state,
        "NetworkSettings": {"Networks": nets},
    }


DB1 = container("db1", "32da9f6caf76", "redis-image")
FRONTEND = container("frontend", "37e2b3282a1c", "webapp", labels={"link.redis": "db1"})


def names(rows: List[ls.Row]) -> List[str]:
    return [row.name for row in rows]


def by_name(rows: List[ls.Row]) -> Dict[str, ls.Row]:
    return {row.name: row for row in rows}


def test_the_example_from_the_issue_renders_as_shown():
    """Two containers and one link: a row per name and one per parent/alias."""
    table = ls.render_table(ls.rows([FRONTEND, DB1]))
    assert table == (
        "NAME             CONTAINER      IMAGE         STATE\n"
        "db1              32da9f6caf76   redis-image   running\n"
        "frontend         37e2b3282a1c   webapp        running\n"
        "frontend/redis   32da9f6caf76   redis-image   running\n"
    )


def test_a_link_row_describes_the_child():
    """The link row names parent, alias, child reference and the child's container."""
    row = by_name(ls.rows([FRONTEND, DB1]))["frontend/redis"]
    assert (row.kind, row.parent, row.alias, row.child) == ("link", "frontend", "redis", "db1")
    assert row.id == DB1["Id"]
    assert (row.wait, row.optional, row.note) == ("listening", False, None)


def test_a_dangling_link_is_shown_as_missing():
    """A child no container answers to gives a 'missing' row with a note, not no row."""
    parent = container("web", "aa", "webapp", labels={"link.cache": "memcached"})
    rows = ls.rows([parent])
    row = by_name(rows)["web/cache"]
    assert (row.state, row.container, row.image) == ("missing", "", "")
    assert row.note == "no container answers to 'memcached'"
    assert ls.render_table(rows) == (
        "NAME        CONTAINER      IMAGE    STATE     NOTE\n"
        "web         aa0000000000   webapp   running\n"
        "web/cache   -              -        missing   no container answers to 'memcached'\n"
    )


def test_an_optional_dangling_link_says_so_in_the_table():
    """link.<alias>.optional=true is carried to the row and the table's state."""
    parent = container(
        "web", "aa", labels={"link.cache": "memcached", "link.cache.optional": "true"}
    )
    rows = ls.rows([parent])
    assert by_name(rows)["web/cache"].optional is True
    assert "missing (optional)" in ls.render_table(rows)


def test_a_stopped_child_is_hidden_but_its_link_says_exited():
    """Without --all a stopped child has no row of its own; the link shows it exited."""
    db = container("db1", "32da9f6caf76", status="exited")
    rows = by_name(ls.rows([FRONTEND, db]))
    assert "db1" not in rows
    assert rows["frontend/redis"].state == "exited"
    assert rows["frontend/redis"].note == "db1 is not running"


def test_all_lists_stopped_containers_and_their_links():
    """--all adds stopped containers, and the links of stopped parents."""
    db = container("db1", "32da9f6caf76", status="exited")
    parent = container("old", "bb", status="exited", labels={"link.db": "db1"})
    assert names(ls.rows([parent, db])) == []
    assert names(ls.rows([parent, db], show_all=True)) == ["db1", "old", "old/db"]


def test_network_aliases_are_other_names_of_a_container():
    """A network alias gets its own row; the Engine's short-ID alias and the name do not."""
    db = container("proj-db1-1", "cc", networks={"proj_default": ["db1", "proj-db1-1"]})
    rows = ls.rows([db])
    assert names(rows) == ["db1", "proj-db1-1"]
    alias = by_name(rows)["db1"]
    assert (alias.kind, alias.id, alias.networks) == ("alias", db["Id"], ("proj_default",))


def test_a_link_resolves_a_network_alias_on_a_shared_network():
    """A compose service name links to the container holding that alias on a shared net."""
    db = container("proj-db1-1", "cc", networks={"proj_default": ["db1"]})
    web = container(
        "proj-web-1", "dd", "webapp", networks={"proj_default": ["web"]},
        labels={"link.redis": "db1"},
    )
    row = by_name(ls.rows([web, db]))["proj-web-1/redis"]
    assert (row.state, row.id, row.note) == ("running", db["Id"], None)


def test_a_network_alias_on_a_network_not_shared_does_not_resolve():
    """An alias counts only on a network the parent is on."""
    db = container("db", "cc", networks={"other": ["db1"]})
    web = container("web", "dd", networks={"front": []}, labels={"link.redis": "db1"})
    assert by_name(ls.rows([web, db]))["web/redis"].state == "missing"


def test_an_alias_held_by_two_containers_is_ambiguous():
    """Two containers answering to one reference is an ambiguity, named in the note."""
    a = container("db-a", "c1", networks={"net": ["db"]})
    b = container("db-b", "c2", networks={"net": ["db"]})
    web = container("web", "dd", networks={"net": []}, labels={"link.redis": "db"})
    row = by_name(ls.rows([web, a, b]))["web/redis"]
    assert row.state == "ambiguous"
    assert row.note == "the network alias 'db' is held by db-a, db-b"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("32da9f6caf76" + "0" * 52, "32da9f6caf76"),  # full ID
        ("32da9f", "32da9f6caf76"),  # unique prefix
        ("db1", "32da9f6caf76"),  # name
        ("/db1", "32da9f6caf76"),  # name with Docker's leading slash
    ],
)
def test_a_child_is_found_by_id_prefix_or_name(reference, expected):
    """References are full IDs, unique ID prefixes or names, as in the Engine."""
    web = container("web", "dd", labels={"link.redis": reference})
    assert by_name(ls.rows([web, DB1]))["web/redis"].container == expected


def test_a_name_wins_over_an_id_prefix():
    """A container named like another's ID prefix is found by its name first."""
    other = container("abc", "ee")
    prefixed = container("x", "abc1")
    web = container("web", "dd", labels={"link.r": "abc"})
    assert by_name(ls.rows([web, other, prefixed]))["web/r"].id == other["Id"]


def test_an_alias_on_the_parents_network_wins_over_an_id_prefix():
    """Compose's ``db1`` is the alias of proj-db1-1; a stranger whose ID happens to start
    with db1 (one in 4096) is not what the user meant."""
    stranger = container("vault", "db1f00", networks={"bridge": []})
    compose = container("proj-db1-1", "c1", networks={"net": ["db1"]})
    web = container("web", "dd", networks={"net": []}, labels={"link.db": "db1"})
    assert by_name(ls.rows([web, stranger, compose]))["web/db"].id == compose["Id"]


def test_an_id_prefix_is_found_when_no_alias_answers():
    stranger = container("vault", "db1f00", networks={"net": []})
    web = container("web", "dd", networks={"net": []}, labels={"link.db": "db1"})
    assert by_name(ls.rows([web, stranger]))["web/db"].id == stranger["Id"]


def test_an_id_prefix_of_two_containers_is_ambiguous():
    """A short prefix shared by two IDs names neither."""
    one, two = container("one", "ab1"), container("two", "ab2")
    web = container("web", "dd", labels={"link.r": "ab"})
    row = by_name(ls.rows([web, one, two]))["web/r"]
    assert row.state == "ambiguous"
    assert "one, two" in row.note


def test_a_child_on_no_shared_network_is_flagged():
    """A child found by name but on no network the parent is on cannot be reached."""
    db = container("db1", "32da9f6caf76", networks={"back": []})
    web = container("web", "dd", networks={"front": []}, labels={"link.redis": "db1"})
    assert by_name(ls.rows([web, db]))["web/redis"].note == "db1 shares no network with web"


def test_a_bad_label_spoils_only_its_own_link():
    """A parent with a bad link label shows that alias as invalid; its other links stay."""
    web = container(
        "web", "dd",
        labels={"link.redis": "db1", "link.cache": "mc", "link.cache.wait": "forever"},
    )
    rows = by_name(ls.rows([web, DB1]))
    assert rows["web/redis"].state == "running"
    assert rows["web/cache"].state == "invalid"
    assert "link.cache.wait" in rows["web/cache"].note


def test_an_attribute_label_without_its_link_is_invalid_not_a_link():
    """link.<alias>.wait alone is no link: ls reports the declaration error."""
    web = container("web", "dd", labels={"link.db.wait": "healthy"})
    row = by_name(ls.rows([web]))["web/db"]
    assert row.state == "invalid"
    assert "link.db=<child>" in row.note


def test_attribute_labels_are_not_rows_and_feed_the_link():
    """link.<alias>.wait and .optional describe the link; they are not links themselves."""
    web = container(
        "web", "dd",
        labels={"link.redis": "db1", "link.redis.wait": "healthy", "link.redis.optional": "1"},
    )
    rows = ls.rows([web, DB1])
    assert names(rows) == ["db1", "web", "web/redis"]
    row = by_name(rows)["web/redis"]
    assert (row.wait, row.optional) == ("healthy", True)


def test_health_is_shown_next_to_the_state():
    """A child with a HEALTHCHECK shows 'running (healthy)' in the table."""
    db = container("db1", "32da9f6caf76", health="starting")
    table = ls.render_table(ls.rows([FRONTEND, db]))
    assert "frontend/redis   32da9f6caf76   redis-image   running (starting)" in table


def test_links_sort_under_their_parent():
    """parent/alias rows follow their parent, before names that merely share a prefix."""
    web2 = container("frontend-2", "ff", "webapp")
    assert names(ls.rows([web2, FRONTEND, DB1])) == [
        "db1", "frontend", "frontend/redis", "frontend-2",
    ]


def test_json_objects_have_stable_keys():
    """Contract: every object has exactly the documented keys, in order."""
    parent = container("web", "aa", labels={"link.cache": "nope", "link.redis": "db1"})
    objects = json.loads(ls.render_json(ls.rows([parent, DB1])))
    assert [o["name"] for o in objects] == ["db1", "web", "web/cache", "web/redis"]
    for obj in objects:
        assert list(obj) == [
            "name", "kind", "container", "id", "image", "state", "health", "parent",
            "alias", "child", "networks", "wait", "optional", "env", "secrets", "note",
        ]
    link = objects[3]
    assert link == {
        "name": "web/redis", "kind": "link", "container": "32da9f6caf76", "id": DB1["Id"],
        "image": "redis-image", "state": "running", "health": None, "parent": "web",
        "alias": "redis", "child": "db1", "networks": ["bridge"], "wait": "listening",
        "optional": False, "env": "all", "secrets": None, "note": None,
    }
    assert objects[2]["state"] == "missing"


def test_an_empty_host_prints_the_header_only():
    """No containers: the table is its header, the JSON an empty list."""
    assert ls.render_table([]) == "NAME   CONTAINER   IMAGE   STATE\n"
    assert json.loads(ls.render_json([])) == []


def test_an_unreachable_engine_exits_69_with_one_clear_message():
    """DOCKER_HOST pointing nowhere: 'cannot reach the Docker Engine at ...', status 69."""
    out, err = io.StringIO(), io.StringIO()
    status = ls.main([], out, err, environ={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert status == EX_UNAVAILABLE == 69
    assert out.getvalue() == ""
    first = err.getvalue().splitlines()[0]
    assert first.startswith(
        "linkinit: cannot reach the Docker Engine at unix:///nonexistent/docker.sock"
    )


def test_a_bad_option_exits_64():
    """Usage errors follow the contract's 64, not argparse's 2."""
    out, err = io.StringIO(), io.StringIO()
    assert ls.main(["--format", "yaml"], out, err, environ={}) == EX_USAGE
    assert err.getvalue().startswith("linkinit: ls: argument --format")


def test_help_goes_to_the_given_stdout_and_exits_0():
    """--help prints the usage line to stdout and nothing else happens (no Engine call)."""
    out, err = io.StringIO(), io.StringIO()
    assert ls.main(["--help"], out, err, environ={"DOCKER_HOST": "unix:///nonexistent"}) == 0
    assert out.getvalue().startswith("usage: linkinit ls [-h] [-a] [--format {table,json}]\n")
    assert err.getvalue() == ""


def test_a_link_that_receives_less_than_all_shows_which_keys_in_an_env_column():
    """env=PASSWORD,NOPE with secrets=files: the keys the child has, as files; the named key
    it lacks in NOTE; the other links say all (or none)."""
    db = {**DB1, "Config": {**DB1["Config"], "Env": ["PASSWORD=x", "USER=u", "PATH=/bin"]}}
    web = container("web", "bb", "webapp", labels={
        "link.redis": "db1", "link.redis.env": "PASSWORD,NOPE", "link.redis.secrets": "files",
        "link.all": "db1", "link.quiet": "db1", "link.quiet.env": "none"})
    assert ls.render_table(ls.rows([web, db])) == (
        "NAME        CONTAINER      IMAGE         STATE     ENV                NOTE\n"
        "db1         32da9f6caf76   redis-image   running\n"
        "web         bb0000000000   webapp        running\n"
        "web/all     32da9f6caf76   redis-image   running   all\n"
        "web/quiet   32da9f6caf76   redis-image   running   none\n"
        "web/redis   32da9f6caf76   redis-image   running   PASSWORD (files)   "
        "db1's environment has no NOPE\n"
    )
    objects = {o["name"]: o for o in json.loads(ls.render_json(ls.rows([web, db])))}
    assert (objects["web/redis"]["env"], objects["web/redis"]["secrets"]) == (
        ["PASSWORD"], "files")
    assert (objects["web/all"]["env"], objects["web/quiet"]["env"]) == ("all", "none")
