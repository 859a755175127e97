"""A parent gets only the child's variables it names (``env=``), as files if it asks
(``secrets=files``): real parents on the real Engine, one child shared by the module."""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any, Iterator

import docker
import pytest

from .conftest import EngineUnderTest, connect_engine
from .dockerkit import env_lines, output, wait_exit, wait_until
from .linkkit import link_variables, run_parent, start_child

pytestmark = pytest.mark.timeout(120)

CHILD_ENV = {"PASSWORD": "dockerpass-4711", "USER": "app", "TOKEN": "token-0815"}
SECRETS = "/run/linkinit-secrets"


@pytest.fixture(scope="module")
def child(engines_under_test: dict[str, EngineUnderTest], tmp_path_factory: Any) -> Iterator[Any]:
    """One running child with three variables, for every parent of this module."""
    if "docker" not in engines_under_test:
        engines_under_test["docker"] = connect_engine("docker")
    docker = engines_under_test["docker"]
    made = start_child(docker.client, docker.image(tmp_path_factory),
                       f"lt-secrets-db-{uuid.uuid4().hex[:8]}", environment=CHILD_ENV)
    try:
        yield made
    finally:
        made.remove(force=True)


def links(child: Any, **attributes: str) -> dict:
    labels = {"link.db": child.name, "link.db.wait": "started"}
    labels.update({f"link.db.{key}": value for key, value in attributes.items()})
    return labels


def run(run_container: Any, unique: Any, args: list, labels: dict, **kwargs: Any) -> tuple:
    """Run a parent to its end: (status, stdout, stderr)."""
    parent = run_parent(run_container, unique("web"), args, labels=labels, **kwargs)
    status = wait_exit(parent)
    return status, output(parent), output(parent, stdout=False, stderr=True)


def test_an_allowlist_exports_only_the_named_keys_and_says_which_are_missing(
        child, run_container, unique, tmp_path):
    """env=PASSWORD,NOPE (a label) and env: [USER] (the file, a second alias of the same
    child): only those; NOPE is simply absent, said on stderr, and the exit status is 0."""
    config = tmp_path / "linkinit.yaml"
    config.write_text(f"links:\n  cache: {{container: {child.name}, wait: started, "
                      "env: [USER]}\n")
    status, out, err = run(run_container, unique,
                           ["--print-env", "--config", "/etc/linkinit.yaml"],
                           links(child, env="PASSWORD,NOPE"),
                           volumes={str(config): {"bind": "/etc/linkinit.yaml", "mode": "ro"}})
    assert status == 0, err
    env = env_lines(out)
    assert {k: v for k, v in env.items() if "_ENV_" in k} == {
        "DB_ENV_PASSWORD": "dockerpass-4711", "CACHE_ENV_USER": "app"}
    assert "DB_NAME" in env and "CACHE_NAME" in env
    assert (f"linkinit: db ({child.name}): the child's environment has no NOPE (named by "
            "env=): DB_ENV_NOPE not set") in err.splitlines()


def test_none_exports_no_variable_of_the_child(child, run_container, unique):
    status, out, err = run(run_container, unique, ["--", "env"], links(child, env="none"))
    assert status == 0, err
    variables = link_variables(env_lines(out), "DB")
    assert variables["DB_NAME"].endswith("/db")
    assert [key for key in variables if "_ENV_" in key] == []


def test_a_bad_env_label_exits_64_naming_it(child, run_container, unique):
    status, _, err = run(run_container, unique, ["--", "true"], links(child, env="HOME"))
    assert status == 64
    assert err == ("linkinit: label link.db.env=HOME: HOME is never copied from a child "
                   "(Docker's links left HOME and PATH out); leave it out of the list\n")


SHOW_SECRET = (
    'f="$DB_ENV_PASSWORD_FILE"; stat -c "%a %u" "$f" "$(dirname "$f")"; cat "$f"; echo; '
    "env; python3 -c 'import linkinit; print(linkinit.require_env(\"db\", \"password\"))'"
)


def test_secrets_are_files_owned_by_a_non_root_command_and_not_in_its_environment(
        child, run_container, unique):
    """As uid 1000 (a tmpfs the operator gives it): each copied variable is a 0400 file of
    uid 1000 in a 0700 directory; COMMAND's environment holds the path, never the value;
    require_env reads the value through the file."""
    status, out, err = run(
        run_container, unique, ["--", "sh", "-c", SHOW_SECRET],
        links(child, env="PASSWORD,USER", secrets="files"), user="1000:1000",
        group_add=[os.stat("/var/run/docker.sock").st_gid],
        tmpfs={SECRETS: "uid=1000,gid=1000,mode=0700"})
    assert status == 0, err
    lines = out.splitlines()
    assert lines[:3] == ["400 1000", "700 1000", "dockerpass-4711"]
    env = env_lines("\n".join(lines[3:-1]))
    assert env["DB_ENV_PASSWORD_FILE"] == f"{SECRETS}/DB_ENV_PASSWORD"
    assert env["DB_ENV_USER_FILE"] == f"{SECRETS}/DB_ENV_USER"
    assert "DB_ENV_PASSWORD" not in env and "DB_ENV_TOKEN" not in env
    assert "dockerpass-4711" not in "\n".join(lines[3:-1])
    assert lines[-1] == "dockerpass-4711"


def test_as_root_without_a_tmpfs_the_directory_is_plain_and_said_so(child, run_container,
                                                                     unique):
    """Docker's default capabilities do not let linkinit mount: a 0700 directory, one line
    on stderr that says how to keep the files in memory."""
    status, out, err = run(run_container, unique, ["--", "sh", "-c", SHOW_SECRET],
                           links(child, env="PASSWORD", secrets="files"))
    assert status == 0, err
    assert out.splitlines()[:3] == ["400 0", "700 0", "dockerpass-4711"]
    assert (f"linkinit: secrets: {SECRETS} is a plain directory, not a tmpfs (Operation not "
            f"permitted); `docker run --tmpfs {SECRETS}` keeps the files in memory only"
            ) in err.splitlines()


def test_as_root_with_cap_sys_admin_linkinit_mounts_a_tmpfs(child, run_container, unique):
    status, out, err = run(
        run_container, unique,
        ["--", "sh", "-c", f'grep " {SECRETS} " /proc/mounts; cat "$DB_ENV_PASSWORD_FILE"'],
        links(child, env="PASSWORD", secrets="files"), cap_add=["SYS_ADMIN"])
    assert status == 0, err
    mount, value = out.splitlines()
    assert mount.startswith(f"tmpfs {SECRETS} tmpfs rw,nosuid,nodev,noexec")
    assert "mode=700" in mount and value == "dockerpass-4711"
    assert "plain directory" not in err


def test_a_non_root_parent_that_cannot_make_the_directory_exits_64_with_the_fix(
        child, run_container, unique):
    status, _, err = run(run_container, unique, ["--", "true"],
                         links(child, secrets="files"), user="1000:1000",
                         group_add=[os.stat("/var/run/docker.sock").st_gid])
    assert status == 64
    assert err == (f"linkinit: secrets=files: cannot use {SECRETS} (Permission denied); it "
                   "must be a directory this user (uid 1000) owns: run the container with "
                   f"--tmpfs {SECRETS}:uid=1000,mode=0700, or set LINKINIT_SECRETS_DIR to "
                   "one\n")


READ_SECRET = ("import linkinit, os, stat; path = '/run/linkinit-secrets/REDIS_ENV_PASSWORD'; "
               "print(linkinit.require_env('redis', 'password'), "
               "oct(stat.S_IMODE(os.stat(path).st_mode)))")


def test_follow_mode_rewrites_the_file_when_the_child_comes_back_with_another_value(
        docker_client, linkinit_image, run_container, unique):
    """on-change=hosts: the child recreated with a new PASSWORD (compose's recreate); the
    file holds the new value (still 0400) and require_env, in any process, reads it."""
    name = unique("db")
    children = [start_child(docker_client, linkinit_image, name,
                            environment={"PASSWORD": "first-value"})]
    try:
        parent = run_parent(run_container, unique("web"), ["--", "sleep", "300"], labels={
            "link.redis": name, "link.redis.wait": "started", "link.redis.env": "PASSWORD",
            "link.redis.secrets": "files", "linkinit.on-change": "hosts"})

        def read() -> str:
            return parent.exec_run(["python3", "-c", READ_SECRET]).output.decode().strip()

        wait_until(lambda: read() == "first-value 0o400", 60, "the first value")
        children[0].remove(force=True)
        children[0] = start_child(docker_client, linkinit_image, name,
                                  environment={"PASSWORD": "second-value"})
        wait_until(lambda: read() == "second-value 0o400", 60, "the value of the new child")
        assert "second-value" not in parent.exec_run(["cat", "/proc/1/environ"]).output.decode()
    finally:
        for child in children:
            with contextlib.suppress(docker.errors.NotFound):
                child.remove(force=True)
