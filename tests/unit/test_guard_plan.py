"""``linkinit guard``: the plan from canned inspect documents, the diff, and the command's errors.

The plan is the security decision, so it is tested as a table of situations: who may talk to
whom on which port, and which problems cost only the link concerned. The diff is tested for
the property that matters on a live host: no step opens more than the old or the new chain,
and applying it twice changes nothing.
"""

from __future__ import annotations

import io
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from linkinit.host import guard, guard_plan
from linkinit.host.guard_plan import CHAIN, Rule, changes, parse_rules, plan

NET_ID = "a1b2c3d4e5f6" + "0" * 52
OTHER_ID = "ffeeddccbbaa" + "0" * 52


def network(name: str = "appnet", net_id: str = NET_ID, **extra: Any) -> Dict[str, Any]:
    return {"Name": name, "Id": net_id, "Driver": "bridge", "Options": {}, **extra}


def container(
    name: str,
    cid: str,
    ips: Optional[Dict[str, str]] = None,
    labels: Optional[Dict[str, str]] = None,
    exposed: Sequence[str] = (),
    running: bool = True,
    aliases: Optional[Dict[str, List[str]]] = None,
) -> Dict[str, Any]:
    """An inspect document with just what the guard reads."""
    ips = {"appnet": "172.20.0.2"} if ips is None else ips
    net_ids = {"appnet": NET_ID, "bridge": "b" * 64, "other": OTHER_ID}
    return {
        "Id": cid * 64 if len(cid) == 1 else cid,
        "Name": f"/{name}",
        "State": {"Running": running, "Status": "running" if running else "exited"},
        "Config": {"Labels": labels or {}, "ExposedPorts": {p: {} for p in exposed}},
        "NetworkSettings": {"Networks": {
            net: {"NetworkID": net_ids[net], "IPAddress": ip if running else "",
                  "Aliases": (aliases or {}).get(net)}
            for net, ip in ips.items()
        }},
    }


BR = ("-i", "br-a1b2c3d4e5f6", "-o", "br-a1b2c3d4e5f6")


def replies(name: str = "appnet", bridge: Tuple[str, ...] = BR) -> Rule:
    return Rule((*bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
                 "-m", "comment", "--comment", f"linkinit replies on {name}", "-j", "RETURN"))


def drop(name: str = "appnet", bridge: Tuple[str, ...] = BR) -> Rule:
    return Rule((*bridge, "-m", "comment", "--comment", f"linkinit drop other traffic on {name}",
                 "-j", "DROP"))


def allow(src: str, dst: str, port: int, comment: str, proto: str = "tcp") -> Rule:
    return Rule(("-s", f"{src}/32", "-d", f"{dst}/32", *BR, "-p", proto, "-m", proto,
                 "--dport", str(port), "-m", "comment", "--comment", comment, "-j", "RETURN"))


def db(**extra: Any) -> Dict[str, Any]:
    extra.setdefault("ips", {"appnet": "172.20.0.3"})
    extra.setdefault("exposed", ["6379/tcp"])
    return container("db1", "d", **extra)


def web(**extra: Any) -> Dict[str, Any]:
    extra.setdefault("labels", {"link.redis": "db1"})
    return container("web", "e", **extra)


def allowed(rules: Sequence[Rule]) -> List[Tuple[str, ...]]:
    """(source, destination, protocol, port) of each allow rule: the decisions, no syntax."""
    found = []
    for rule in rules:
        if "-s" in rule.args:
            a = rule.args
            found.append((a[a.index("-s") + 1], a[a.index("-d") + 1], a[a.index("-p") + 1],
                          a[a.index("--dport") + 1]))
    return found


# -- plan -------------------------------------------------------------------------------------


def test_a_linked_parent_may_reach_each_port_its_child_exposes_and_nothing_else() -> None:
    """Replies first, one allow per exposed port of the linked child, then the drop."""
    child = db(exposed=["6379/tcp", "53/udp", "26379/tcp"])
    stranger = container("stranger", "f", ips={"appnet": "172.20.0.9"})
    rules = plan([web(), child, stranger], [network()])
    comment = "linkinit web/redis -> db1"
    assert rules == [
        replies(),
        allow("172.20.0.2", "172.20.0.3", 6379, comment),
        allow("172.20.0.2", "172.20.0.3", 26379, comment),
        allow("172.20.0.2", "172.20.0.3", 53, comment, "udp"),
        drop(),
    ]


def test_a_link_the_engine_keeps_opens_the_port_as_a_label_does() -> None:
    """`docker run --network appnet --link db1:redis` (the endpoint's Links), no label: the
    same allow rule as for link.redis=db1."""
    parent = web(labels={})
    parent["NetworkSettings"]["Networks"]["appnet"]["Links"] = ["db1:redis"]
    rules = plan([parent, db()], [network()])
    assert rules == [replies(), allow("172.20.0.2", "172.20.0.3", 6379,
                                      "linkinit web/redis -> db1"), drop()]


def test_a_network_without_links_gets_only_replies_and_the_drop() -> None:
    """Unlinked containers reach nobody: the drop covers them, no rule names them."""
    rules = plan([container("a", "a"), db()], [network()])
    assert rules == [replies(), drop()]


def test_a_child_that_exposes_no_port_cannot_be_reached_even_through_a_link() -> None:
    """As with Docker's links under --icc=false: the link opens only exposed ports."""
    assert allowed(plan([web(), db(exposed=[])], [network()])) == []


@pytest.mark.parametrize("reference", ["db1", "/db1", "d" * 64, "dddd", "cache"])
def test_a_child_is_found_by_name_id_prefix_or_network_alias(reference: str) -> None:
    """The same references linkinit resolves in the parent: name, ID, prefix, alias."""
    child = db(aliases={"appnet": ["cache"]})
    rules = plan([web(labels={"link.redis": reference}), child], [network()])
    assert allowed(rules) == [("172.20.0.2/32", "172.20.0.3/32", "tcp", "6379")]


def test_a_stopped_parent_gets_no_rules() -> None:
    """Rules vanish when the parent goes: a stopped container has no address to allow."""
    assert allowed(plan([web(running=False), db()], [network()])) == []


def test_a_stopped_child_gets_no_rules() -> None:
    """Its old address may be handed to another container: nothing may point at it."""
    assert allowed(plan([web(), db(running=False)], [network()])) == []


def test_parent_and_child_must_both_be_on_the_protected_network() -> None:
    """A link across another network is that network's business, not this one's."""
    child_elsewhere = db(ips={"other": "172.30.0.3"})
    assert allowed(plan([web(), child_elsewhere], [network()])) == []
    parent_elsewhere = web(ips={"other": "172.30.0.2"})
    assert allowed(plan([parent_elsewhere, db()], [network()])) == []


def test_each_protected_network_gets_its_own_rules_with_the_addresses_on_it() -> None:
    """A pair sharing two protected networks is allowed on each, with each network's IPs."""
    parent = web(ips={"appnet": "172.20.0.2", "other": "172.30.0.2"})
    child = db(ips={"appnet": "172.20.0.3", "other": "172.30.0.3"})
    rules = plan([parent, child], [network(), network("other", OTHER_ID)])
    assert allowed(rules) == [("172.20.0.2/32", "172.20.0.3/32", "tcp", "6379"),
                              ("172.30.0.2/32", "172.30.0.3/32", "tcp", "6379")]
    assert [r.args[1] for r in rules if r.drops] == ["br-a1b2c3d4e5f6", "br-ffeeddccbbaa"]


def test_the_default_bridge_uses_its_bridge_name_option() -> None:
    """``bridge`` is ``docker0``; a user network may set its own interface name too."""
    bridge = network("bridge", "b" * 64, Options={guard_plan.BRIDGE_NAME_OPTION: "docker0"})
    rules = plan([], [bridge])
    docker0 = ("-i", "docker0", "-o", "docker0")
    assert rules == [replies("bridge", docker0), drop("bridge", docker0)]


def test_a_network_that_is_no_bridge_is_left_open_with_a_warning() -> None:
    """macvlan or overlay traffic never crosses the host's FORWARD chain."""
    warnings: List[str] = []
    assert plan([], [network(Driver="macvlan")], warnings.append) == []
    assert warnings == ["network appnet has driver macvlan: only bridge networks can be "
                        "guarded; it is left open"]


def test_a_bad_label_costs_only_its_own_link() -> None:
    """Another link of the same parent still works, and the warning names the label."""
    labels = {"link.redis": "db1", "link.bad.colour": "red"}
    warnings: List[str] = []
    rules = plan([web(labels=labels), db()], [network()], warnings.append)
    assert allowed(rules) == [("172.20.0.2/32", "172.20.0.3/32", "tcp", "6379")]
    assert len(warnings) == 1
    assert warnings[0].startswith("parent web: label link.bad.colour: unknown link attribute")


def test_labels_outside_link_are_ignored() -> None:
    """``linkinit.*`` and other labels are not the guard's to judge."""
    labels = {"link.redis": "db1", "linkinit.test": "guard", "com.example": "x"}
    warnings: List[str] = []
    assert allowed(plan([web(labels=labels), db()], [network()], warnings.append))
    assert warnings == []


def test_a_dangling_link_is_warned_about_unless_optional() -> None:
    warnings: List[str] = []
    labels = {"link.redis": "nothere", "link.extra": "gone", "link.extra.optional": "true"}
    assert allowed(plan([web(labels=labels)], [network()], warnings.append)) == []
    assert warnings == ["parent web: link redis: no container answers to 'nothere'"]


def test_two_aliases_for_one_child_make_one_rule() -> None:
    rules = plan([web(labels={"link.a": "db1", "link.b": "db1"}), db()], [network()])
    assert len(allowed(rules)) == 1


def test_a_parent_linking_to_itself_gets_nothing() -> None:
    me = container("me", "a", labels={"link.self": "me"}, exposed=["80/tcp"])
    assert allowed(plan([me], [network()])) == []


# -- diff -------------------------------------------------------------------------------------


def _apply(chain: List[Tuple[str, ...]], commands: List[List[str]]) -> List[Tuple[str, ...]]:
    """A model of iptables for -I 1, -A and -D N; checks that no step breaks the order."""
    chain = list(chain)
    for command in commands:
        op, args = command[0], tuple(command[2:])
        if op == "-I":
            assert args[0] == "1"
            chain.insert(0, args[1:])
        elif op == "-A":
            chain.append(args)
        else:
            assert op == "-D" and len(args) == 1
            del chain[int(args[0]) - 1]
        verdicts = [rule[-1] for rule in chain]
        assert verdicts == sorted(verdicts, key=lambda v: v == "DROP"), "RETURN after DROP"
    return chain


def test_the_diff_builds_an_empty_chain_in_plan_order() -> None:
    desired = plan([web(), db()], [network()])
    assert _apply([], changes([], desired)) == [r.args for r in desired]


def test_the_diff_of_a_chain_that_matches_is_empty() -> None:
    """Reconciling after a restart changes nothing: no duplicates."""
    desired = plan([web(), db()], [network()])
    assert changes([r.args for r in desired], desired) == []


def test_the_diff_removes_stale_rules_and_duplicates() -> None:
    old = plan([web(), db()], [network()])
    new = plan([web(running=False), db()], [network()])
    current = [old[0].args, *(r.args for r in old)]
    assert _apply(current, changes(current, new)) == [r.args for r in new]


def test_the_diff_moves_a_return_found_after_a_drop_before_it() -> None:
    """A chain someone reordered by hand: the stray RETURN would never be reached."""
    desired = plan([web(), db()], [network()])
    current = [desired[0].args, desired[2].args, desired[1].args]
    result = _apply(current, changes(current, desired))
    assert sorted(result) == sorted(r.args for r in desired)
    assert result[-1] == desired[2].args


def test_the_diff_adds_a_new_parent_before_the_drop() -> None:
    old = plan([web(running=False), db()], [network()])
    new = plan([web(), db()], [network()])
    commands = changes([r.args for r in old], new, "MYCHAIN")
    assert commands == [["-I", "MYCHAIN", "1", *new[1].args]]


def test_rules_read_back_from_iptables_equal_the_planned_ones() -> None:
    """``iptables -S`` output (double-quoted comments) parses to the planned arguments."""
    listing = (
        f"-N {CHAIN}\n"
        f'-A {CHAIN} -s 172.20.0.2/32 -d 172.20.0.3/32 -i br-a1b2c3d4e5f6 -o br-a1b2c3d4e5f6 '
        f'-p tcp -m tcp --dport 6379 -m comment --comment "linkinit web/redis -> db1" -j RETURN\n'
    )
    assert parse_rules(listing, CHAIN) == [allow("172.20.0.2", "172.20.0.3", 6379,
                                                 "linkinit web/redis -> db1").args]


def test_a_dry_run_line_is_an_iptables_command() -> None:
    assert drop().command() == (f"iptables -A {CHAIN} -i br-a1b2c3d4e5f6 -o br-a1b2c3d4e5f6 "
                                "-m comment --comment 'linkinit drop other traffic on appnet' "
                                "-j DROP")


# -- the command's errors ---------------------------------------------------------------------


def run(argv: List[str]) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = guard.main(argv, out, err)
    return status, out.getvalue(), err.getvalue()


def test_not_root_is_exit_77_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard.os, "geteuid", lambda: 1000)
    assert run([]) == (77, "", "linkinit: guard: must run as root (it changes the host's "
                       "iptables rules): use sudo, or run it as a root systemd service\n")


def test_missing_iptables_is_exit_69_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard.os, "geteuid", lambda: 0)
    monkeypatch.setattr(guard.shutil, "which", lambda name: None)
    assert run(["--uninstall"]) == (69, "", "linkinit: guard: iptables not found on PATH: "
                                    "install iptables (Debian: apt-get install iptables)\n")


def test_absent_docker_user_chain_is_exit_69_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(guard.os, "geteuid", lambda: 0)
    monkeypatch.setattr(guard.shutil, "which", lambda name: "/usr/sbin/iptables")
    monkeypatch.setattr(guard.Iptables, "rules", lambda self, chain: None)
    status, out, err = run([])
    assert (status, out) == (69, "")
    assert err.count("\n") == 1
    assert err.startswith("linkinit: guard: Docker's DOCKER-USER chain is absent from the "
                          "filter table: start dockerd with iptables enabled")


@pytest.mark.parametrize("argv", [["--bogus"], ["--dry-run", "--uninstall"],
                                  ["--chain", "DOCKER-USER"], ["--chain", "x" * 29]])
def test_bad_usage_is_exit_64_with_one_line(argv: List[str]) -> None:
    status, out, err = run(argv)
    assert (status, out, err.count("\n")) == (64, "", 1)
    assert err.startswith("linkinit: guard: ")


def test_help_goes_to_the_given_stdout() -> None:
    status, out, err = run(["--help"])
    assert (status, err) == (0, "")
    assert out.startswith("usage: linkinit guard")
