"""What PID 1's watcher is told crosses the slim re-exec as argv: every option comes back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from linkinit.init.supervise import Follow, Watch

FIELDS = ("pid", "group", "grace", "keep_orphans", "kill_orphans", "stop_delay", "wait_all",
          "rewrite", "remap_exit", "title")
seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@given(st.integers(1, 2**22), st.booleans(), seconds, st.booleans(), st.booleans(), seconds,
       st.booleans(), st.dictionaries(st.integers(1, 64), st.integers(0, 64), max_size=4),
       st.frozensets(st.integers(0, 255), max_size=4),
       st.text().map(lambda command: "linkinit: supervising " + command))
def test_every_option_survives_the_reexec(pid, group, grace, keep, kill, delay, wait_all,
                                          rewrite, remap, title):
    """to_args then from_args gives back the same watch, the new options included."""
    watch = Watch(pid, group=group, grace=grace, keep_orphans=keep, kill_orphans=kill,
                  stop_delay=delay, wait_all=wait_all, rewrite=rewrite, remap_exit=remap,
                  title=title)
    back = Watch.from_args(watch.to_args())
    assert {f: getattr(back, f) for f in FIELDS} == {f: getattr(watch, f) for f in FIELDS}
    assert back.follow is None


def test_follow_mode_rides_along_after_the_watch_options():
    """Follow mode's part comes last and is read apart: the watcher's and COMMAND's argv."""
    watch = Watch(7, kill_orphans=True, stop_delay=2.5)
    watch.follow = Follow("restart", 1.0, "/run/x", ["/usr/bin/python3", "-m", "linkinit"])
    watch.follow.command = ["app", "--wait-all"]
    back = Watch.from_args(watch.to_args())
    assert (back.kill_orphans, back.stop_delay, back.wait_all) == (True, 2.5, False)
    assert back.follow is not None
    assert back.follow.command == ["app", "--wait-all"]
    assert back.follow.follower == ["/usr/bin/python3", "-m", "linkinit"]
