"""Configuration from links on the real Engine: derived variables, stable addresses, and
templates rendered before COMMAND and again when follow mode sees a child move.

The children run on one user-defined network with a /24 of its own, made once for the
module. To move a child to a new address it is stopped, a filler container takes the
address it had (the first free one), and it is started again: the Engine gives it the next.
Templates come from a host directory bind-mounted read-only at /tpl.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import docker
import pytest

from tests.support.paths import ROOT

from .conftest import SESSION, TEST_LABEL, EngineUnderTest, connect_engine
from .dockerkit import output, wait_exit, wait_until
from .linkkit import run_parent, start_child

pytestmark = pytest.mark.timeout(300)

REDIS_URL = "redis://default:${REDIS_ENV_PASSWORD}@${REDIS_PORT_6379_TCP_ADDR}:${REDIS_PORT_6379_TCP_PORT}/0"
PRINT_SIGNALS = ["python3", "/opt/linkinit-tests/print_signals.py", "--lifetime", "200"]
FETCH = ("import sys, urllib.request\n"
         "try:\n"
         "    print(urllib.request.urlopen('http://127.0.0.1:8081/', timeout=5).read().decode())\n"
         "except Exception as error:\n"
         "    print('failed', error); sys.exit(1)\n")


def stderr_of(container: Any) -> str:
    return output(container, stdout=False, stderr=True)


@pytest.fixture(scope="module")
def docker_side(engines_under_test: dict) -> EngineUnderTest:
    """Docker, connected once for the module's shared network and children."""
    if "docker" not in engines_under_test:
        engines_under_test["docker"] = connect_engine("docker")
    return engines_under_test["docker"]


@pytest.fixture(scope="module")
def network(docker_side: EngineUnderTest) -> Iterator[Any]:
    """A user-defined network on a /24 of its own under 10.232.0.0/16 (its DNS answers for
    names and aliases); removed with what is left on it."""
    client = docker_side.client
    made = None
    for _ in range(20):  # another run's /24 may overlap: pick another, a bounded number
        subnet = f"10.232.{uuid.uuid4().int % 230 + 20}.0/24"
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
        try:
            made = client.networks.create(f"lt-config-{uuid.uuid4().hex[:8]}", ipam=ipam,
                                          labels={TEST_LABEL: SESSION})
            break
        except docker.errors.APIError as error:
            if "overlap" not in str(error):
                raise
    assert made is not None, "no free /24 under 10.232.0.0/16 for the test network"
    yield made
    for container in client.containers.list(all=True, filters={"network": made.id}):
        container.remove(force=True)
    made.remove()


@pytest.fixture(scope="module")
def redis(docker_side: EngineUnderTest, network: Any, tmp_path_factory: Any) -> Iterator[Any]:
    """A real Redis with a password, shared by the tests that only read it."""
    image = docker_side.image(tmp_path_factory)
    child = start_child(docker_side.client, image, f"lt-cfg-redis-{uuid.uuid4().hex[:8]}",
                        command=["redis-server", "--requirepass", "dockerpass",
                                 "--protected-mode", "no"],
                        expose=[6379], environment={"PASSWORD": "dockerpass"},
                        network=network.name)
    yield child
    child.remove(force=True)


@pytest.fixture(scope="module")
def templates(tmp_path_factory: Any) -> Path:
    """The host directory parents see at /tpl (read-only)."""
    return tmp_path_factory.mktemp("templates")


def address(container: Any, network: Any) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]


def move(child: Any, network: Any, run_container: Callable[..., Any],
         unique: Callable[[str], str]) -> str:
    """Stop the child, let a filler take the address it had, start it again: its new one."""
    old = address(child, network)
    child.stop(timeout=1)
    filler = run_container(["sleep", "300"], name=unique(f"filler-{uuid.uuid4().hex[:4]}"))
    network.connect(filler, ipv4_address=old)
    child.start()
    new = address(child, network)
    assert new != old
    return new


def parent(run_container: Any, unique: Callable[[str], str], network: Any, args: list,
           labels: dict, templates: Path, **kwargs: Any) -> Any:
    volumes = {str(templates): {"bind": "/tpl", "mode": "ro"}}
    return run_parent(run_container, unique("web"), args, labels=labels,
                      network=network.name, volumes=volumes, **kwargs)


def test_a_derived_url_is_what_redis_cli_uses(run_container, unique, network, redis,
                                              templates) -> None:
    """A label's REDIS_URL, built from moby's variables, connects redis-cli; `$$` is `$`; a
    variable the container sets itself wins over a derived one of the same name."""
    labels = {"link.redis": redis.name, "linkinit.env.REDIS_URL": REDIS_URL,
              "linkinit.env.DB_HOST": "${REDIS_PORT_6379_TCP_ADDR}"}
    script = ('echo "PRICE=$PRICE DB_HOST=$DB_HOST"; redis-cli -u "$REDIS_URL" SET greeting hi'
              ' && redis-cli -u "$REDIS_URL" GET greeting')
    web = parent(run_container, unique, network,
                 ["--env", "PRICE=$$5 on ${REDIS_PORT_6379_TCP_PORT}", "--", "sh", "-c", script],
                 labels, templates, environment={"DB_HOST": "mine"})
    assert wait_exit(web) == 0, stderr_of(web)
    assert output(web).splitlines() == ["PRICE=$5 on 6379 DB_HOST=mine", "OK", "hi"]


def test_an_unknown_name_in_a_value_exits_64_naming_the_label_and_the_name(
        run_container, unique, network, redis, templates) -> None:
    labels = {"link.redis": redis.name,
              "linkinit.env.REDIS_URL": "redis://:${REDIS_PASWORD}@${REDIS_PORT}/0"}
    web = parent(run_container, unique, network, ["--", "true"], labels, templates)
    assert wait_exit(web) == 64
    assert stderr_of(web) == (
        "linkinit: label linkinit.env.REDIS_URL: ${REDIS_PASWORD} is not a link variable nor "
        "one of this container's variables (did you mean REDIS_ENV_PASSWORD?); write $$ for "
        "a literal $\n")


def test_an_unknown_name_in_a_template_exits_64_naming_its_file_line_and_name(
        run_container, unique, network, redis, templates) -> None:
    (templates / "typo.j2").write_text("# upstream\nserver {{ REDIS_PORT_6379_TCP_ADR }};\n")
    labels = {"link.redis": redis.name, "linkinit.template.up": "/tpl/typo.j2:/etc/app/up.conf"}
    web = parent(run_container, unique, network, ["--", "true"], labels, templates)
    assert wait_exit(web) == 64
    assert stderr_of(web) == ("linkinit: label linkinit.template.up: /tpl/typo.j2:2: "
                              "'REDIS_PORT_6379_TCP_ADR' is undefined\n")


def test_a_template_is_rendered_before_command_reads_it(run_container, unique, network,
                                                        redis, templates) -> None:
    """DEST (in a directory made for it) holds the rendering when COMMAND starts: link
    variables, derived ones and ``links.<alias>`` as names; the mode asked for."""
    (templates / "app.j2").write_text(
        "host={{ REDIS_PORT_6379_TCP_ADDR }} port={{ links.redis.port }}\n"
        "url={{ REDIS_URL }}\n"
        "password={{ links.redis.env.PASSWORD }} ports={{ links.redis.ports | length }}\n")
    labels = {"link.redis": redis.name, "linkinit.env.REDIS_URL": REDIS_URL,
              "linkinit.template.app": "/tpl/app.j2:/etc/app/conf.d/redis.conf",
              "linkinit.template.app.mode": "0640"}
    web = parent(run_container, unique, network,
                 ["--", "sh", "-c", "cat /etc/app/conf.d/redis.conf; "
                                    "stat -c %a /etc/app/conf.d/redis.conf"],
                 labels, templates)
    assert wait_exit(web) == 0, stderr_of(web)
    ip = address(redis, network)
    assert output(web) == (f"host={ip} port=6379\nurl=redis://default:dockerpass@{ip}:6379/0\n"
                           "password=dockerpass ports=1\n640\n")


def command_env(web: Any) -> str:
    """The environment COMMAND was given, which it saved at start (export -p)."""
    done = web.exec_run(["cat", "/tmp/command.env"])
    return done.output.decode() if done.exit_code == 0 else ""


def ping(web: Any, variable: str) -> str:
    """``redis-cli ping`` at the address COMMAND was given in ``variable``."""
    script = f'. /tmp/command.env; redis-cli -h "${variable}" -p 6379 -a dockerpass ping'
    done = web.exec_run(["sh", "-c", script], stderr=False)
    return done.output.decode().strip()


def test_address_name_survives_a_restart_onto_a_new_ip_without_follow_mode(
        run_container, unique, network, docker_side, templates, linkinit_image) -> None:
    """``address=name``: DB_PORT_6379_TCP_ADDR is ``db`` (the network's DNS answers for it,
    so /etc/hosts gets no line), and still reaches the child after it restarted on a new
    IP; the same child linked by IP (the default) is left at the old one."""
    child = start_child(docker_side.client, linkinit_image, unique("db"),
                        command=["redis-server", "--requirepass", "dockerpass",
                                 "--protected-mode", "no"],
                        expose=[6379], network=network.name, aliases=["db"])
    try:
        labels = {"link.db": "db", "link.db.address": "name", "link.byip": child.name}
        web = parent(run_container, unique, network,
                     ["--", "sh", "-c", "export -p > /tmp/command.env; exec sleep 300"],
                     labels, templates)
        wait_until(lambda: command_env(web), timeout=60, what="COMMAND started")
        old = address(child, network)
        assert "DB_PORT_6379_TCP_ADDR='db'" in command_env(web)
        assert f"BYIP_PORT_6379_TCP_ADDR='{old}'" in command_env(web)
        assert "DB_PORT='tcp://db:6379'" in command_env(web)
        hosts = web.exec_run(["cat", "/etc/hosts"]).output.decode()
        assert [line for line in hosts.splitlines() if "db" in line.split()[1:]] == []
        assert ping(web, "DB_PORT_6379_TCP_ADDR") == ping(web, "BYIP_PORT_6379_TCP_ADDR") \
            == "PONG"
        move(child, network, run_container, unique)
        wait_until(lambda: ping(web, "DB_PORT_6379_TCP_ADDR") == "PONG", timeout=30,
                   what="the name reaching the restarted child")
        assert ping(web, "BYIP_PORT_6379_TCP_ADDR") != "PONG"  # the control: the old IP
    finally:
        child.remove(force=True)


def rendered(web: Any, path: str) -> str:
    done = web.exec_run(["cat", path])
    return done.output.decode() if done.exit_code == 0 else ""


def test_follow_mode_renders_again_and_only_a_passing_check_sends_the_signal(
        run_container, unique, network, docker_side, templates, linkinit_image) -> None:
    """on-change=signal:HUP with a checked template: a move renders it again and sends one
    HUP; with the check failing, a move keeps the old file, reports, and sends none."""
    (templates / "upstream.j2").write_text("server {{ links.db.address }}:{{ links.db.port }};\n")
    child = start_child(docker_side.client, linkinit_image, unique("db"),
                        command=["nc", "-lk", "6379"], expose=[6379], network=network.name)
    check = 'test ! -e /tmp/refuse && grep -q "^server " "$LINKINIT_TEMPLATE_FILE"'
    try:
        labels = {"link.db": child.name, "linkinit.on-change": "signal:HUP",
                  "linkinit.template.up": "/tpl/upstream.j2:/run/app/upstream.conf",
                  "linkinit.template.up.check": check}
        web = parent(run_container, unique, network, ["--", *PRINT_SIGNALS], labels,
                     templates)
        wait_until(lambda: "ready" in output(web), timeout=60, what="COMMAND ready")
        assert rendered(web, "/run/app/upstream.conf") == \
            f"server {address(child, network)}:6379;\n"
        new = move(child, network, run_container, unique)
        wait_until(lambda: "SIGHUP" in output(web), timeout=60, what="the HUP")
        assert rendered(web, "/run/app/upstream.conf") == f"server {new}:6379;\n"
        assert "template up: /run/app/upstream.conf rendered again" in stderr_of(web)

        web.exec_run(["touch", "/tmp/refuse"])
        move(child, network, run_container, unique)
        wait_until(lambda: "check failed" in stderr_of(web), timeout=60,
                   what="the failing check reported")
        assert rendered(web, "/run/app/upstream.conf") == f"server {new}:6379;\n"
        assert output(web).count("SIGHUP") == 1, output(web)
        assert (f"template up: check failed, /run/app/upstream.conf kept as it was: {check}: "
                "(exit status 1)") in stderr_of(web)
    finally:
        child.remove(force=True)


NGINX_CONF = """\
worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path /tmp/nginx-body;
    proxy_temp_path /tmp/nginx-proxy;
    fastcgi_temp_path /tmp/nginx-fastcgi;
    uwsgi_temp_path /tmp/nginx-uwsgi;
    scgi_temp_path /tmp/nginx-scgi;
    upstream app {
        server {{ links.app.address }}:{{ links.app.port }};
    }
    server {
        listen 127.0.0.1:8081;
        location / { proxy_pass http://app; }
    }
}
"""

NGINX_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY nginx /usr/sbin/nginx
RUN mkdir -p /etc/nginx /var/log/nginx /var/lib/nginx
"""


@pytest.fixture(scope="module")
def nginx_image(docker_side: EngineUnderTest, tmp_path_factory: Any) -> Iterator[str]:
    """The test image with Debian's nginx (installed on the host by scripts/ensure-nginx,
    its binary copied in: containers reach no package index); removed after the module."""
    ensured = subprocess.run([str(ROOT / "scripts" / "ensure-nginx")], capture_output=True,
                             text=True, timeout=600)
    assert ensured.returncode == 0, ensured.stderr[-2000:]
    base = docker_side.image(tmp_path_factory)
    context = tmp_path_factory.mktemp("nginx-image")
    shutil.copy2("/usr/sbin/nginx", context / "nginx")
    (context / "Dockerfile").write_text(NGINX_DOCKERFILE)
    tag = f"linkinit-test-nginx:{uuid.uuid4().hex[:12]}"
    docker_side.client.images.build(path=str(context), tag=tag, buildargs={"BASE": base},
                                    rm=True, labels={TEST_LABEL: SESSION})
    yield tag
    docker_side.client.images.remove(tag, force=True)


HUP_RECEIVED = "signal 1 (SIGHUP) received"  # nginx's notice, once per reload


def fetch(web: Any) -> str:
    done = web.exec_run(["python3", "-c", FETCH])
    return done.output.decode().strip()


def test_nginx_reloads_onto_a_moved_child_and_serves_through_it(
        run_container, unique, network, docker_side, templates, nginx_image,
        linkinit_image) -> None:
    """nginx's upstream rendered from a link, checked with ``nginx -t``, reloaded with HUP:
    after the child moves, nginx serves from its new address."""
    (templates / "nginx.conf.j2").write_text(NGINX_CONF)
    serve = ("mkdir -p /srv && echo \"hello from $HOSTNAME\" > /srv/index.html && "
             "exec python3 -m http.server -d /srv 8080")
    child = start_child(docker_side.client, linkinit_image, unique("app"),
                        command=["sh", "-c", serve], expose=[8080], network=network.name)
    try:
        labels = {"link.app": child.name, "linkinit.on-change": "signal:HUP",
                  "linkinit.template.nginx": "/tpl/nginx.conf.j2:/etc/nginx/nginx.conf",
                  "linkinit.template.nginx.check":
                      'nginx -t -q -e stderr -c "$LINKINIT_TEMPLATE_FILE"'}
        web = parent(run_container, unique, network,
                     ["--", "nginx", "-e", "stderr", "-g", "daemon off;"], labels, templates,
                     image=nginx_image)
        hostname = child.attrs["Config"]["Hostname"]
        wait_until(lambda: fetch(web) == f"hello from {hostname}", timeout=60,
                   what="nginx serving the child")
        new = move(child, network, run_container, unique)
        wait_until(lambda: HUP_RECEIVED in stderr_of(web), timeout=60, what="nginx reloading")
        assert f"server {new}:8080;" in rendered(web, "/etc/nginx/nginx.conf")
        wait_until(lambda: fetch(web) == f"hello from {hostname}", timeout=30,
                   what="nginx serving the moved child")
        assert stderr_of(web).count(HUP_RECEIVED) == 1, stderr_of(web)
    finally:
        child.remove(force=True)
