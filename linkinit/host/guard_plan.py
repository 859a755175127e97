"""What ``linkinit guard`` wants the firewall to say: pure, inspect documents in, rules out.

``plan`` turns the protected networks' documents into the rules of the guard's chain (see
``guard``'s docstring for their order and meaning), ``changes`` diffs the chain as it is
against the plan, ``parse_rules`` reads ``iptables -S``. No process, socket or file: unit
tests drive it with canned documents.
"""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

from linkinit.errors import DeclarationError
from linkinit.model import container as model

CHAIN = "LINKINIT-GUARD"
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


# -- pure: inspect documents -> rules ---------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One rule of the guard's chain: the iptables arguments after ``-A <chain>``.

    The arguments are in the order ``iptables -S`` prints them, so a rule read back from the
    kernel compares equal to the planned one and reconciling changes nothing that is right.
    """

    args: Tuple[str, ...]

    @property
    def drops(self) -> bool:
        return self.args[-1] == "DROP"

    def command(self, chain: str = CHAIN) -> str:
        """As an iptables command line, for ``--dry-run`` and the log."""
        return shlex.join(["iptables", "-A", chain, *self.args])


def bridge_interface(network: Mapping[str, Any]) -> Optional[str]:
    """The host interface of a bridge network (``docker0``, ``br-<id12>``); None if no bridge.

    Only bridge networks pass container-to-container traffic through the host's FORWARD
    chain (with ``bridge-nf-call-iptables``, which dockerd turns on).
    """
    if network.get("Driver") != "bridge":
        return None
    options = network.get("Options") or {}
    return str(options.get(BRIDGE_NAME_OPTION) or f"br-{str(network.get('Id', ''))[:12]}")


def _comment(text: str) -> Tuple[str, ...]:
    # Names and aliases are [A-Za-z0-9_.-]: nothing iptables would quote differently.
    return ("-m", "comment", "--comment", text[:255])


def links(
    parent: Mapping[str, Any],
    containers: Sequence[Mapping[str, Any]],
    warn: Callable[[str], None],
) -> List[Tuple[str, Mapping[str, Any]]]:
    """``(alias, child)`` for each link the parent's labels declare and the Engine resolves.

    Only ``link.*`` labels are read, one alias at a time, so a bad label costs only its own
    link (and other ``linkinit.*`` labels are no business of the guard's).
    """
    parent_name = model.name_of(parent)
    found = []
    for _, spec in model.declared_links(parent):
        if isinstance(spec, DeclarationError):
            warn(f"parent {parent_name}: {spec}; that link is not allowed until it is fixed")
            continue
        lookup = model.find_in(spec.child, parent, containers)
        child = lookup.container
        if child is None:
            if not spec.optional:
                warn(f"parent {parent_name}: link {spec.alias}: {lookup.why}")
            continue
        if child.get("Id") != parent.get("Id"):
            found.append((spec.alias, child))
    return found


def plan(
    containers: Sequence[Mapping[str, Any]],
    networks: Sequence[Mapping[str, Any]],
    warn: Optional[Callable[[str], None]] = None,
) -> List[Rule]:
    """The whole chain for these protected networks, from the containers' inspect documents.

    ``containers`` are all the Engine's containers (stopped ones too: a reference resolves
    among all, as linkinit resolves it); ``networks`` the inspect documents of the networks
    to protect. Per network: replies, then one allow per parent, link and exposed port,
    then the drop. Problems (a bad label, a dangling link) go to ``warn`` and cost only the
    links concerned.
    """
    warn = warn or (lambda message: None)
    rules: List[Rule] = []
    for network in sorted(networks, key=lambda n: str(n.get("Name", ""))):
        name = str(network.get("Name", ""))
        interface = bridge_interface(network)
        if interface is None:
            warn(f"network {name} has driver {network.get('Driver')}: only bridge networks "
                 "can be guarded; it is left open")
            continue
        on_bridge = ("-i", interface, "-o", interface)
        rules.append(Rule((*on_bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
                           *_comment(f"linkinit replies on {name}"), "-j", "RETURN")))
        allowed: set = set()
        for parent in sorted(containers, key=model.name_of):
            rules += _allow_rules(parent, containers, network, allowed, warn)
        rules.append(Rule((*on_bridge, *_comment(f"linkinit drop other traffic on {name}"),
                           "-j", "DROP")))
    return rules


def _allow_rules(
    parent: Mapping[str, Any],
    containers: Sequence[Mapping[str, Any]],
    network: Mapping[str, Any],
    allowed: set,
    warn: Callable[[str], None],
) -> List[Rule]:
    """One parent's RETURN rules on one network: each link, each port its child exposes
    (ranges expanded), once per (source, target, port) however many aliases lead there."""
    source = model.address_on(parent, network)
    if source is None:
        return []
    on_bridge = ("-i", str(bridge_interface(network)), "-o", str(bridge_interface(network)))
    rules = []
    for alias, child in sorted(links(parent, containers, warn), key=lambda x: x[0]):
        target = model.address_on(child, network)
        if target is None:
            continue
        comment = f"linkinit {model.name_of(parent)}/{alias} -> {model.name_of(child)}"
        for port in model.exposed_ports(child):
            key = (source, target, port.proto, port.number)
            if key in allowed:
                continue
            allowed.add(key)
            rules.append(Rule((
                "-s", f"{source}/32", "-d", f"{target}/32", *on_bridge,
                "-p", port.proto, "-m", port.proto, "--dport", str(port.number),
                *_comment(comment), "-j", "RETURN",
            )))
    return rules


def changes(
    current: Sequence[Tuple[str, ...]], desired: Sequence[Rule], chain: str = CHAIN
) -> List[List[str]]:
    """The iptables argument lists that turn the chain's ``current`` rules into ``desired``.

    Order is all that matters for correctness: every RETURN must come before every DROP.
    Unwanted rules, duplicates and RETURNs found after a DROP are deleted first, by number
    from the bottom up (deleting only closes what the new chain closes too); then new RETURN
    rules are inserted at the top and new DROP rules appended. No step opens more than the
    old or the new chain, and a chain that already matches gets no command at all.
    """
    doomed, kept = _doomed(current, Counter(rule.args for rule in desired))
    commands = [["-D", chain, str(number)] for number in reversed(doomed)]
    missing = [rule for rule in dict.fromkeys(desired) if kept[rule.args] == 0]
    commands += [["-I", chain, "1", *r.args] for r in reversed(missing) if not r.drops]
    commands += [["-A", chain, *r.args] for r in missing if r.drops]
    return commands


def _doomed(current: Sequence[Tuple[str, ...]], want: Counter) -> Tuple[List[int], Counter]:
    """The rule numbers to delete (unwanted, duplicate, or a RETURN after a DROP), and how
    many of each wanted rule stay."""
    first_drop = next((i for i, args in enumerate(current) if args[-1] == "DROP"), len(current))
    kept: Counter = Counter()
    doomed = []
    for index, args in enumerate(current):
        if (args[-1] != "DROP" and index > first_drop) or kept[args] >= want[args]:
            doomed.append(index + 1)
        else:
            kept[args] += 1
    return doomed, kept


def parse_rules(listing: str, chain: str) -> List[Tuple[str, ...]]:
    """The rules of ``iptables -S <chain>`` output, as argument tuples after ``-A <chain>``."""
    rules = []
    for line in listing.splitlines():
        words = shlex.split(line)
        if words[:2] == ["-A", chain]:
            rules.append(tuple(words[2:]))
    return rules
