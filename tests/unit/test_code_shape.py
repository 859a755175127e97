"""The code stays easy to carry on: no function in linkinit/ is more complex than 12.

Cyclomatic complexity as radon counts it (every branch, loop, boolean operator and
comprehension condition), the measure the project's style asks for.
"""

from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_visit

LIMIT = 12
PACKAGE = Path(__file__).resolve().parents[2] / "linkinit"


def test_no_function_in_linkinit_is_more_complex_than_the_limit() -> None:
    over = [
        f"{path.name}:{block.lineno} {block.fullname} ({block.complexity})"
        for path in sorted(PACKAGE.rglob("*.py"))
        for block in cc_visit(path.read_text())
        if block.complexity > LIMIT
    ]
    assert over == [], "split these: " + ", ".join(over)


def test_the_measure_sees_a_complex_function() -> None:
    """The control: a function of 13 branches is over the limit."""
    source = "def f(x):\n" + "".join(f"    if x == {i}:\n        return {i}\n" for i in range(13))
    assert cc_visit(source)[0].complexity == 14 > LIMIT
