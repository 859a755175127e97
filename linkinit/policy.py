"""The proxy's rules as data: what a caller may ask the Engine, and what it may see in answers.

Pure: takes the caller (its container and the containers it may see) and the request (method,
path, query) and returns allow or refuse(status, message); the server only forwards what is
allowed and filters the answers with the functions below. Deny is the default: a request no
row of ``ROUTES`` allows is refused. A container the caller may not see answers 404 exactly as
a missing one does, so names cannot be probed; a refused operation answers 403. Messages are
the Engine's own ``{"message": ...}`` and name the rule and the fix.

What a caller may see: itself, and the children declared in what the operator fixed when the
container was created: its ``link.<alias>=<child>`` labels, ``--link`` in its configured
Entrypoint/Cmd and ``LINKINIT_LINKS`` in its configured environment. A YAML file inside the
container proves nothing (the container can write it), unless the operator runs the proxy
with ``--trust-files``. A child that is a swarm service is seen as linkinit reads it: the
service, its tasks (listed by a ``service`` filter only) and its image.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections import namedtuple
from typing import Any, Iterable, Mapping, Optional, Sequence

from linkinit.model import swarm
from linkinit.model.container import declared_links
from linkinit.model.declare import split_link

READ = ("GET", "HEAD")
EVERYONE = "everyone"  # any caller the proxy identified
IN_SCOPE = "in scope"  # the container the path names must be the caller or one of its children
SERVICE_IN_SCOPE = "service in scope"  # the service the path names must be a linked one
IMAGE_IN_SCOPE = "image in scope"  # the image must be a linked service's
FILTERED = "filtered"  # allowed; the answer holds only the caller and its children

# One row per rule: (methods, path, route, who may see it). Paths are matched without the API
# version prefix (/v1.41/...); ``{ref}`` is a container or service name, ID or ID prefix;
# ``{image}`` an image reference (it may hold slashes: ``localhost/redis:7``).
ROUTES: tuple[tuple[tuple[str, ...], str, str, str], ...] = (
    (READ, "/_ping", "ping", EVERYONE),
    (READ, "/version", "version", EVERYONE),
    (("GET",), "/containers/json", "list", FILTERED),
    (("GET",), "/containers/{ref}/json", "inspect", IN_SCOPE),
    (("GET",), "/events", "events", FILTERED),
    (("GET",), "/services/{ref}", "service", SERVICE_IN_SCOPE),
    (("GET",), "/tasks", "tasks", FILTERED),
    (("GET",), "/images/{image}/json", "image", IMAGE_IN_SCOPE),
)
_PATTERNS = [re.compile("^" + path.replace("{ref}", "(?P<ref>[^/]+)")
                        .replace("{image}", "(?P<ref>.+)") + "$")
             for _, path, _, _ in ROUTES]
_VERSION = re.compile(r"^/v[0-9]+(?:\.[0-9]+)?(?=/)")
_CONTAINER_PATH = re.compile(r"^/containers/(?P<ref>[^/]+)/")
EVENT_FILTERS = ("type", "event", "container")
TASK_FILTERS = ("service",)
EVENT_PARAMETERS = ("filters", "since")
_FUZZY_EVENTS = ("health_status", "exec_create", "exec_start")  # as the Engine matches them

LINKS = "links"  # sees itself and its children
ALL = "all"  # a host process let in by --allow-host, or any caller under --trust-files
NOBODY = "nobody"  # not mapped to a container, and --allow-host not given

LABEL_FIX = "declare the link on this container at create time, e.g. --label link.<alias>={ref}"
SERVICE_FIX = ("a swarm task declares it in its service's container labels, e.g. docker service "
               "create --container-label link.<alias>={ref}")
FILE_NOTE = ("links declared only in a YAML file inside the container are not proof (the "
             "container can write that file); the operator may run the proxy with --trust-files")


class Visible(namedtuple("Visible", "id name")):
    """A container a caller may see: its full ID and its name (without the leading /)."""

    __slots__ = ()


class Caller(namedtuple("Caller",
                        "id name view scope pid services images address document why env",
                        defaults=("", NOBODY, (), 0, (), (), "", None, "", ()))):
    """Who is calling, as the kernel and the Engine say.

    id: the container's full ID ("" for a process outside any container); name: str; view:
    LINKS, ALL or NOBODY; scope: tuple of Visible, the caller first; pid: the peer's PID (0 on
    TCP); services: tuple of Visible, the swarm services it links; images: their images as
    linkinit asks for them; address: the TCP peer ("10.0.1.5:41234"), "" on the Unix socket;
    document: the caller's own inspect document when the Engine cannot answer for it (a task
    on another node); why: for NOBODY, what the proxy found at the caller's address; env:
    (child or service ID, the keys of its environment the caller may see, None for all)
    pairs (``env_redaction``).
    """

    __slots__ = ()


class Request(namedtuple("Request", "method path query", defaults=((),))):
    """method: str; path: the URL path as sent (percent-encoded); query: (key, value) pairs."""

    __slots__ = ()


class Decision(namedtuple("Decision", "allowed status message route ref",
                          defaults=(0, "", "", ""))):
    """allowed: bool; status and message when refused; route (a ROUTES name) and ref when
    allowed."""

    __slots__ = ()


def allow(route: str, ref: str = "") -> Decision:
    return Decision(True, route=route, ref=ref)


def refuse(status: int, message: str) -> Decision:
    return Decision(False, status, f"linkinit proxy: {message}")


def decide(caller: Caller, request: Request) -> Decision:
    """The one rule book: allow, or refuse with a status and a message that says the fix."""
    if caller.view == NOBODY:
        return refuse(403, _unmapped(caller))
    path = _VERSION.sub("", request.path, count=1)
    if request.method not in READ:
        return refuse(403, f"{request.method} {path} is refused: the proxy is read-only (it "
                           "allows GET and HEAD of what linkinit reads); run this from the host")
    for (methods, _, route, who), pattern in zip(ROUTES, _PATTERNS, strict=True):
        match = pattern.match(path)
        if match and request.method in methods:
            ref = urllib.parse.unquote(match.groupdict().get("ref") or "")
            return _judge(caller, request, route, who, ref)
    container = _CONTAINER_PATH.match(path)
    if container and not sees(caller, urllib.parse.unquote(container["ref"])):
        return not_visible(caller, urllib.parse.unquote(container["ref"]))
    return refuse(403, f"{request.method} {path} is refused: the proxy allows only /_ping, "
                       "/version, inspecting and listing linked containers, inspecting linked "
                       "swarm services, their tasks and images, and /events")


def about_swarm(request: Request) -> bool:
    """Whether the request is for services or tasks (only a swarm manager answers those)."""
    path = _VERSION.sub("", request.path, count=1)
    return path == "/tasks" or path.startswith("/services/")


def needs_scope(request: Request) -> bool:
    """Whether judging the request needs the caller's children (not for /_ping, /version)."""
    path = _VERSION.sub("", request.path, count=1)
    return not any(pattern.match(path) and who == EVERYONE
                   for (_, _, _, who), pattern in zip(ROUTES, _PATTERNS, strict=True))


def _judge(caller: Caller, request: Request, route: str, who: str, ref: str) -> Decision:
    if who == IN_SCOPE and not sees(caller, ref):
        return not_visible(caller, ref)
    if who == SERVICE_IN_SCOPE and not sees_service(caller, ref):
        return service_not_visible(ref)
    if who == IMAGE_IN_SCOPE and not sees_image(caller, ref):
        return refuse(403, f"GET /images/{ref}/json is refused: this container may inspect "
                           "only the image of a swarm service it links")
    problem = ""
    if route == "events":
        problem = event_query_problem(request.query)
    elif route == "tasks":
        problem = task_query_problem(caller, request.query)
    if problem:
        return refuse(403 if "refused" in problem else 400, problem)
    return allow(route, ref)


def _unmapped(caller: Caller) -> str:
    if caller.address:
        return (f"the caller at {caller.address} {caller.why or 'is no task or container'}; "
                "this proxy serves tasks and containers on the overlay networks it is attached "
                "to: attach the proxy to the caller's overlay network (docker service update "
                "--network-add), or call it from a task or container on one of its networks")
    return (f"the calling process (pid {caller.pid}) is in no container this Engine runs; "
            "the proxy serves containers only: run host tools on the Engine's own socket, or "
            "start the proxy with --allow-host to let host processes read through it")


def not_visible(caller: Caller, ref: str) -> Decision:
    """404, worded alike whether the container exists or not."""
    return refuse(404, f"No such container: {ref} (this container sees only itself and the "
                       f"children it links; {LABEL_FIX.format(ref=ref)}; {FILE_NOTE})")


def sees(caller: Caller, ref: str) -> bool:
    """Whether ``ref`` (a name, full ID or ID prefix) names the caller or one of its children."""
    if caller.view == ALL:
        return True
    return bool(ref) and (named_exactly(caller, ref) is not None
                          or any(seen.id.startswith(ref) for seen in caller.scope))


def named_exactly(caller: Caller, ref: str) -> Optional[Visible]:
    """The container in the caller's scope that ``ref`` names by full ID or exact name (not
    by prefix: the Engine's own answer to a prefix is what counts), or None."""
    name = ref[1:] if ref.startswith("/") else ref
    return next((seen for seen in caller.scope if ref == seen.id or name == seen.name), None)


def sees_service(caller: Caller, ref: str) -> bool:
    """Whether ``ref`` (a name, full ID or ID prefix) names a swarm service the caller links."""
    return caller.view == ALL or (bool(ref) and any(
        ref in (seen.id, seen.name) or seen.id.startswith(ref) for seen in caller.services))


def sees_service_id(caller: Caller, service_id: str) -> bool:
    """Whether the service with this full ID is one the caller links."""
    return caller.view == ALL or any(service_id == seen.id for seen in caller.services)


def sees_image(caller: Caller, image: str) -> bool:
    """Whether ``image`` is a linked service's, as linkinit asks for it."""
    return caller.view == ALL or image in caller.images


def service_not_visible(ref: str) -> Decision:
    """404 in the Engine's words for a missing service, whether it exists or not."""
    return refuse(404, f"service {ref} not found (this container sees only the swarm services "
                       f"it links; {LABEL_FIX.format(ref=ref)}; "
                       f"{SERVICE_FIX.format(ref=ref)})")


def sees_id(caller: Caller, container_id: str) -> bool:
    """Whether the container with this full ID is the caller or one of its children."""
    return caller.view == ALL or any(container_id == seen.id for seen in caller.scope)


def filter_containers(caller: Caller, summaries: Iterable[Mapping[str, Any]]) -> list:
    """The container list, cut to what the caller may see."""
    return [summary for summary in summaries if sees_id(caller, str(summary.get("Id", "")))]


def filter_tasks(caller: Caller, tasks: Iterable[Mapping[str, Any]]) -> list:
    """The task list, cut to the tasks of the services the caller links."""
    return [task for task in tasks if sees_service_id(caller, str(task.get("ServiceID", "")))]


def answers_for_itself(caller: Caller, ref: str) -> bool:
    """Whether an inspect of ``ref`` is the caller asking for itself where the Engine cannot
    answer (a task on another node): the proxy answers with ``caller.document``."""
    return caller.document is not None and swarm.task_answers_to(caller.document, ref)


# -- tasks ----------------------------------------------------------------------------


def task_query_problem(caller: Caller, query: Sequence[tuple[str, str]]) -> str:
    """What is wrong with a /tasks query ("" if nothing): a ``service`` filter naming only
    linked services (a caller with ``ALL`` may list as it likes)."""
    unknown = [key for key, _ in query if key != "filters"]
    if unknown:
        return f"/tasks?{unknown[0]}= is refused: the proxy lists tasks by filters only"
    filters = event_filters(query)
    if filters is None:
        return "/tasks?filters= is not a JSON object of lists"
    if caller.view == ALL:
        return ""
    others = sorted(set(filters) - set(TASK_FILTERS))
    if others or not filters.get("service"):
        named = f"filter {others[0]!r}" if others else "a list without a service filter"
        return (f"/tasks with {named} is refused: the proxy lists only the tasks of the swarm "
                'services this container links, by filters={"service":["<service>"]}')
    hidden = [value for value in filters["service"] if not sees_service(caller, value)]
    if hidden:
        return (f"/tasks of service {hidden[0]!r} is refused: this container sees only the "
                f"swarm services it links; {LABEL_FIX.format(ref=hidden[0])}; "
                f"{SERVICE_FIX.format(ref=hidden[0])}")
    return ""


# -- events ---------------------------------------------------------------------------


def event_query_problem(query: Sequence[tuple[str, str]]) -> str:
    """What is wrong with an /events query ("" if nothing): only filters and since are served."""
    for key, value in query:
        if key not in EVENT_PARAMETERS:
            return (f"/events?{key}= is refused: the proxy serves the live stream with "
                    f"{' and '.join(EVENT_PARAMETERS)} only")
        if key == "since" and not _is_number(value):
            return f"/events?since={value} is not a Unix time in seconds"
    filters = event_filters(query)
    if filters is None:
        return "/events?filters= is not a JSON object of lists"
    unknown = sorted(set(filters) - set(EVENT_FILTERS))
    if unknown:
        return (f"/events filter {unknown[0]!r} is refused: the proxy filters events by "
                f"{', '.join(EVENT_FILTERS)} only")
    return ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def event_filters(query: Sequence[tuple[str, str]]) -> Optional[dict[str, list[str]]]:
    """The ``filters`` of a query as {key: [values]}; the Engine's old {key: {value: true}}
    form too. None when it is not JSON of that shape."""
    raw = dict(query).get("filters")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    filters: dict[str, list[str]] = {}
    for key, values in parsed.items():
        if isinstance(values, dict):
            values = [value for value, on in values.items() if on]
        if not isinstance(values, list):
            return None
        filters[str(key)] = [str(value) for value in values]
    return filters


def event_visible(caller: Caller, event: Mapping[str, Any], filters: Mapping[str, list]) -> bool:
    """Whether an Engine event goes to this caller: about a container it sees or a service it
    links, and matching the caller's own filters as the Engine would match them (the
    ``container`` filter matches a service's ID or name too, as the Engine's does)."""
    actor = event.get("Actor") or {}
    if caller.view != ALL and not _about_scope(caller, event):
        return False
    action = str(event.get("Action", ""))
    name = str((actor.get("Attributes") or {}).get("name", ""))
    checks = (
        ("type", lambda values: event.get("Type") in values),
        ("event", lambda values: _event_matches(action, values)),
        ("container", lambda values: any(
            str(actor.get("ID", "")).startswith(v) or name.startswith(v) for v in values)),
    )
    return all(not filters.get(key) or check(filters[key]) for key, check in checks)


def _about_scope(caller: Caller, event: Mapping[str, Any]) -> bool:
    """Whether the event is about a container the caller sees or a service it links; network,
    image, volume, node events are about neither."""
    subject = str((event.get("Actor") or {}).get("ID", ""))
    if event.get("Type") == "container":
        return sees_id(caller, subject)
    return event.get("Type") == "service" and sees_service_id(caller, subject)


def _event_matches(action: str, values: list) -> bool:
    if any(value in _FUZZY_EVENTS for value in values):
        return any(action.startswith(value) for value in values)
    return action in values


# -- what a container declares ------------------------------------------------------------


def declared_references(container: Mapping[str, Any]) -> list[str]:
    """The child references the operator fixed at create time: ``link.<alias>`` labels, then
    ``--link`` options of linkinit in the configured Entrypoint + Cmd (before ``--``), then
    ``LINKINIT_LINKS`` in the configured environment."""
    config = container.get("Config") or {}
    references: list[str] = []
    for _, spec in declared_links(container):
        if not isinstance(spec, Exception) and spec.child not in references:
            references.append(spec.child)  # a label that does not parse grants nothing
    argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    for child in link_flags(argv) + env_links(config.get("Env") or []):
        if child not in references:
            references.append(child)
    return references


def env_links(env: Sequence[str]) -> list[str]:
    """Children of ``LINKINIT_LINKS=child[:alias],...`` in the environment fixed at create."""
    children: list[str] = []
    for entry in env:
        key, _, value = str(entry).partition("=")
        if key == "LINKINIT_LINKS":
            children += [split_link(part)[0] for part in value.split(",")
                         if split_link(part)[0]]
    return children


def link_flags(argv: Sequence[str]) -> list[str]:
    """Children of ``--link CHILD[:ALIAS]`` in a linkinit command line, up to ``--``."""
    start = next((i for i, word in enumerate(argv)
                  if os.path.basename(str(word)) == "linkinit"), None)
    if start is None:
        return []
    children: list[str] = []
    words = iter(argv[start + 1:])
    for word in words:
        if word == "--":
            break
        value = next(words, "") if word == "--link" else (
            word[len("--link="):] if word.startswith("--link=") else None)
        if value is not None and split_link(value)[0]:
            children.append(split_link(value)[0])
    return children
