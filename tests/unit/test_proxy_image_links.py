"""Links an image declares are not the operator's (``host/proxy/origins.py``): a label, an
environment entry, an Entrypoint or Cmd equal to the image's own came from the image and
grants nothing; what the operator set at create time does."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from linkinit.host.proxy.origins import Declared, declarations


def container(labels: Optional[dict] = None, env: Optional[list] = None,
              entrypoint: Any = None, cmd: Any = None) -> dict:
    return {"Id": "a" * 64, "Name": "/web", "Image": "sha256:" + "b" * 64,
            "Config": {"Labels": labels or {}, "Env": env or [], "Entrypoint": entrypoint,
                       "Cmd": cmd}}


def image(labels: Optional[dict] = None, env: Optional[list] = None, entrypoint: Any = None,
          cmd: Any = None) -> dict:
    return {"Config": {"Labels": labels, "Env": env, "Entrypoint": entrypoint, "Cmd": cmd}}


CASES = {
    "a label the image set": (
        container({"link.vault": "atk"}), image({"link.vault": "atk"}),
        Declared([], (("atk", "label link.vault=atk"),))),
    "the image's label given another value by the operator": (
        container({"link.vault": "db1"}), image({"link.vault": "atk"}), Declared(["db1"], ())),
    "a label the operator added": (
        container({"link.redis": "db1", "link.vault": "atk"}), image({"link.vault": "atk"}),
        Declared(["db1"], (("atk", "label link.vault=atk"),))),
    "LINKINIT_LINKS from the image's ENV": (
        container(env=["PATH=/bin", "LINKINIT_LINKS=atk:vault"]),
        image(env=["PATH=/bin", "LINKINIT_LINKS=atk:vault"]),
        Declared([], (("atk", "ENV LINKINIT_LINKS=atk:vault"),))),
    "LINKINIT_LINKS the operator set with -e": (
        container(env=["LINKINIT_LINKS=db1"]), image(env=["LINKINIT_LINKS=atk"]),
        Declared(["db1"], ())),
    "--link in the image's CMD": (
        container(entrypoint=["linkinit"], cmd=["--link", "atk:vault", "--", "app"]),
        image(entrypoint=["linkinit"], cmd=["--link", "atk:vault", "--", "app"]),
        Declared([], (("atk", "--link atk in the image's CMD"),))),
    "--link in the operator's command after the image's ENTRYPOINT": (
        container(entrypoint=["linkinit"], cmd=["--link", "db1:redis", "--", "app"]),
        image(entrypoint=["linkinit"], cmd=["app"]), Declared(["db1"], ())),
    "--link in the image's ENTRYPOINT, the operator's CMD": (
        container(entrypoint=["linkinit", "--link", "atk"], cmd=["--", "app"]),
        image(entrypoint=["linkinit", "--link", "atk"], cmd=None),
        Declared([], (("atk", "--link atk in the image's ENTRYPOINT"),))),
    "declared by both the image and the operator": (
        container({"link.vault": "db1"}, env=["LINKINIT_LINKS=db1"]),
        image(env=["LINKINIT_LINKS=db1"]), Declared(["db1"], ())),
    "an image that cannot be inspected": (
        container({"link.vault": "atk"}, env=["LINKINIT_LINKS=db1"]), None,
        Declared(["atk", "db1"], ())),
}


@pytest.mark.parametrize("name", CASES)
def test_declarations_are_split_by_origin(name: str) -> None:
    document, own, expected = CASES[name]
    assert declarations(document, own) == expected


def test_a_label_that_does_not_parse_grants_nothing_from_either() -> None:
    assert declarations(container({"link.bad alias": "atk"}), image()) == Declared([], ())
