"""Ready means it answers: wait=redis|postgres|mysql|http|exec against real servers.

The servers are Debian's, in one image (scripts/build-probe-servers: the base image plus
PostgreSQL, MariaDB and busybox; Redis is in the base) with linkinit installed, so a parent
can run their clients in COMMAND. Each scenario holds the child back until the parent shows
that it waits (a handshake on the parent's progress line), then lets it serve.
"""

from __future__ import annotations

import contextlib
import subprocess
from typing import Any, Iterator

import docker
import pytest

from tests.support.paths import ROOT

from .conftest import SESSION, TEST_IMAGE, _build_test_image, connect_engine
from .dockerkit import output, wait_exit, wait_until
from .linkkit import run_parent, start_child
from .test_follow import address, hosts_lines, subnet_network  # noqa: F401 (a fixture)

PG = "/usr/lib/postgresql/15/bin"
# A PostgreSQL that listens but answers 57P03 until promoted: a standby (standby.signal)
# with hot_standby off and nothing to replicate from.
PG_STANDBY = (
    f"mkdir -p /tmp/pg && chown postgres /tmp/pg && su postgres -c '{PG}/initdb -D /tmp/pg "
    "-A trust -U postgres' >/dev/null && printf \"listen_addresses='*'\\nhot_standby=off\\n\" "
    ">>/tmp/pg/postgresql.conf && echo 'host all all 0.0.0.0/0 trust' >>/tmp/pg/pg_hba.conf "
    f"&& touch /tmp/pg/standby.signal && exec su postgres -c '{PG}/postgres -D /tmp/pg'"
)
PROMOTE = ["su", "postgres", "-c", f"{PG}/pg_ctl -D /tmp/pg promote -w -t 20"]
# MariaDB once /tmp/go exists; grant tables skipped so that any user may run a query.
MARIADB = (
    "mariadb-install-db --user=mysql --datadir=/tmp/my --skip-test-db >/dev/null 2>&1 && "
    "until [ -f /tmp/go ]; do sleep 0.05; done; exec mariadbd --user=mysql --datadir=/tmp/my "
    "--bind-address=0.0.0.0 --skip-name-resolve --skip-grant-tables --socket=/tmp/my.sock "
    "--pid-file=/tmp/my.pid"
)
HTTPD = ("mkdir -p /tmp/www && echo home >/tmp/www/index.html && "
         "exec busybox httpd -f -p {port} -h /tmp/www")


@pytest.fixture(scope="module")
def probe_image(engines_under_test: dict, tmp_path_factory: Any) -> str:
    """The servers' image with linkinit from this checkout: child and parent alike."""
    built = subprocess.run([str(ROOT / "scripts" / "build-probe-servers")],
                           capture_output=True, text=True, timeout=900)
    if built.returncode != 0:
        pytest.fail(f"scripts/build-probe-servers failed: {built.stderr[-2000:]}", pytrace=False)
    if "docker" not in engines_under_test:
        engines_under_test["docker"] = connect_engine("docker")
    client = engines_under_test["docker"].client
    return _build_test_image(client, tmp_path_factory, base=built.stdout.strip(),
                             tag=TEST_IMAGE + "-probes")


@pytest.fixture(scope="module")
def children(engines_under_test: dict, probe_image: str) -> Iterator[Any]:
    """``children(name, command, expose)``: a child for the whole module, removed at its end."""
    client = engines_under_test["docker"].client
    made: list[Any] = []

    def make(name: str, command: str, expose: list) -> Any:
        made.append(start_child(client, probe_image, name, ["sh", "-c", command],
                                expose=expose))
        return made[-1]

    yield make
    for container in made:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


@pytest.fixture
def make_child(docker_client: Any, probe_image: str, unique: Any) -> Iterator[Any]:
    """``make_child(prefix, command, port)``: a child of this test (its port exposed, not
    published), removed at its end."""
    made: list[Any] = []

    def make(prefix: str, command: str, port: int) -> Any:
        made.append(start_child(docker_client, probe_image, unique(prefix),
                                ["sh", "-c", command], expose=[port]))
        return made[-1]

    yield make
    for container in made:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


@pytest.fixture(scope="module")
def redis_children(children: Any) -> dict:
    """Redis with and without --requirepass, and an HTTP server on Redis's port."""
    token = SESSION[:6]
    return {
        "open": children(f"lt-redis-open-{token}", "exec redis-server --protected-mode no "
                                                   "--save ''", [6379]),
        "password": children(f"lt-redis-pass-{token}", "exec redis-server --protected-mode no "
                                                       "--save '' --requirepass s3cret", [6379]),
        "http": children(f"lt-redis-http-{token}", HTTPD.format(port=6379), [6379]),
    }


def stderr_of(container: Any) -> str:
    return output(container, stdout=False, stderr=True)


def parent(run_container: Any, unique: Any, image: str, labels: dict, command: str,
           timeout: int = 30, name: str = "web") -> Any:
    return run_parent(run_container, unique(name),
                      ["--timeout", str(timeout), "--", "sh", "-c", command],
                      labels=labels, image=image)


@pytest.mark.parametrize("which", ["open", "password"])
def test_wait_redis_starts_command_once_redis_answers_with_or_without_a_password(
        redis_children, probe_image, run_container, unique, which):
    """PONG (no password) and NOAUTH (a password set) both mean Redis serves."""
    child = redis_children[which]
    web = parent(run_container, unique, probe_image,
                 {"link.db": child.name, "link.db.wait": "redis"},
                 "redis-cli -h $DB_PORT_6379_TCP_ADDR ping")
    assert wait_exit(web) == 0, stderr_of(web)
    assert output(web).strip() == ("PONG" if which == "open" else
                                   "NOAUTH Authentication required.")


def test_an_http_server_on_the_redis_port_is_not_redis(redis_children, probe_image,
                                                       run_container, unique):
    """The port accepts connections, but wait=redis times out with 75 naming the protocol."""
    child = redis_children["http"]
    web = parent(run_container, unique, probe_image,
                 {"link.db": child.name, "link.db.wait": "redis"}, "true", timeout=2)
    assert wait_exit(web) == 75
    assert (f"linkinit: db ({child.name}) not ready after 2s (wait=redis): redis: not a "
            "Redis answer: 'HTTP/1.") in stderr_of(web)
    # the same child is ready for wait=listening: only the protocol tells them apart
    tcp = parent(run_container, unique, probe_image,
                 {"link.db": child.name, "link.db.wait": "tcp"}, "true", name="tcp")
    assert wait_exit(tcp) == 0, stderr_of(tcp)


def test_wait_postgres_holds_command_through_57p03_until_the_standby_is_promoted(
        probe_image, run_container, unique, make_child):
    """A standby with hot_standby off listens and answers 57P03: wait=listening lets psql
    fail; wait=postgres waits, says why, and psql succeeds once the server is promoted."""
    child = make_child("pg", PG_STANDBY, 5432)
    psql = "psql -h $DB_PORT_5432_TCP_ADDR -U postgres -Atc 'select 42'"
    early = parent(run_container, unique, probe_image,
                   {"link.db": child.name, "link.db.wait": "listening"}, psql, name="early")
    assert wait_exit(early) != 0
    assert "not accepting connections" in stderr_of(early)
    web = parent(run_container, unique, probe_image,
                 {"link.db": child.name, "link.db.wait": "postgres"}, psql)
    waiting = (f"linkinit: waiting for db ({child.name}): postgres: the database system is "
               "not accepting connections (57P03)")
    wait_until(lambda: waiting in stderr_of(web), timeout=30, what="57P03 in progress")
    assert child.exec_run(PROMOTE).exit_code == 0
    assert wait_exit(web) == 0, stderr_of(web)
    assert output(web).strip() == "42"
    assert "(57P03) -> postgres: ready" in stderr_of(web)


def test_wait_mysql_waits_for_mariadbs_greeting(probe_image, run_container, unique,
                                                make_child):
    child = make_child("my", MARIADB, 3306)
    web = parent(run_container, unique, probe_image,
                 {"link.db": child.name, "link.db.wait": "mysql"},
                 "mariadb -h $DB_PORT_3306_TCP_ADDR -u app -N -e 'select 42'")
    waiting = f"linkinit: waiting for db ({child.name}): mysql: connection refused"
    wait_until(lambda: waiting in stderr_of(web), timeout=30, what="refused in progress")
    child.exec_run(["touch", "/tmp/go"])
    assert wait_exit(web) == 0, stderr_of(web)
    assert output(web).strip() == "42"
    assert "mysql: connection refused -> mysql: ready" in stderr_of(web)


def test_wait_http_path_waits_until_the_path_answers(probe_image, run_container, unique,
                                                     make_child):
    """busybox httpd serves at once, /health only once the file appears: 404 until then."""
    child = make_child("http", HTTPD.format(port=8080), 8080)
    web = parent(run_container, unique, probe_image,
                 {"link.api": child.name, "link.api.wait": "http:/health"},
                 "busybox wget -qO- http://$API_PORT_8080_TCP_ADDR:8080/health")
    wait_until(lambda: "http: 404 Not Found" in stderr_of(web), timeout=30, what="404")
    child.exec_run(["sh", "-c", "echo ok >/tmp/www/health"])
    assert wait_exit(web) == 0, stderr_of(web)
    assert output(web).strip() == "ok"
    assert "http: 404 Not Found -> http: ready" in stderr_of(web)


def test_wait_exec_runs_in_the_parent_with_the_link_variables(
        redis_children, probe_image, run_container, unique):
    """exec:CMD is ready once CMD exits 0: here once a file exists in the parent, and the
    command sees the link's variables."""
    child = redis_children["open"]
    check = 'test -f /tmp/go && redis-cli -h "$DB_PORT_6379_TCP_ADDR" ping | grep -q PONG'
    web = parent(run_container, unique, probe_image,
                 {"link.db": child.name, "link.db.wait": f"exec:{check}"}, "echo started")
    wait_until(lambda: "exec: exited 1" in stderr_of(web), timeout=30, what="exec failing")
    web.exec_run(["touch", "/tmp/go"])
    assert wait_exit(web) == 0, stderr_of(web)
    assert output(web).strip() == "started"
    assert "exec: exited 1 -> exec: ready" in stderr_of(web)


def test_a_bad_probe_label_is_64_naming_the_label(probe_image, run_container, unique):
    web = parent(run_container, unique, probe_image,
                 {"link.db": "anything", "link.db.wait": "http:health"}, "true")
    assert wait_exit(web) == 64
    assert stderr_of(web).strip() == (
        "linkinit: label link.db.wait: http's path must start with '/' and hold no spaces, "
        "e.g. http:/health or http:/health:204, not 'http:health'")


@pytest.mark.timeout(300)
def test_follow_mode_takes_a_moved_child_only_once_it_answers_its_probe(
        docker_client, probe_image, run_container, unique, subnet_network):  # noqa: F811
    """on-change=hosts, wait=http:/health: the child comes back on a new address answering
    404 (its /health is gone); /etc/hosts keeps the old address until /health answers."""
    network = subnet_network()
    serve = ("mkdir -p /tmp/www && rm -f /tmp/www/health && "
             "exec busybox httpd -f -p 8080 -h /tmp/www")
    child = start_child(docker_client, probe_image, unique("api"), ["sh", "-c", serve],
                        expose=[8080], network=network.name)
    health = ["sh", "-c", "echo ok >/tmp/www/health"]
    wait_until(lambda: child.exec_run(health).exit_code == 0, timeout=30, what="/health")
    web = run_parent(run_container, unique("web"), ["--", "sleep", "300"], image=probe_image,
                     labels={"link.api": child.name, "link.api.wait": "http:/health",
                             "linkinit.on-change": "hosts"}, network=network.name)
    old = address(child, network)
    wait_until(lambda: hosts_lines(web, "api") and hosts_lines(web, "api")[0].startswith(
        f"{old}\t"), timeout=60, what="the first resolution")
    child.stop(timeout=1)  # a filler takes its address: it comes back on another
    filler = run_container(["sleep", "300"], image=probe_image, name=unique("filler"),
                           network=network.name)
    assert address(filler, network) == old
    child.start()
    new = address(child, network)
    said = f"follow: api ({child.name}) runs but does not answer yet (http: 404 Not Found)"
    wait_until(lambda: said in stderr_of(web), timeout=60, what="the probe's 404 reported")
    assert hosts_lines(web, "api")[0].startswith(f"{old}\t")
    child.exec_run(health)
    wait_until(lambda: hosts_lines(web, "api")[0].startswith(f"{new}\t"), timeout=60,
               what="/etc/hosts at the new address")
    assert f"follow: api ({child.name}) changed: now at {new}" in stderr_of(web)
