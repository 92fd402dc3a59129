"""Input sanitization and no-translation markers on hostile and unusual input: what is
harmful goes, everything else stays, and huge or deeply nested input costs linear time
and no recursion."""

from __future__ import annotations

import time

import pytest

from flowhook.errors import InvalidRequest
from flowhook.sessions.attachments import parse_attachments
from flowhook.sessions.no_translate import split, strip_markers
from flowhook.sessions.sanitize import sanitize_data, sanitize_text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain text", "plain text"),
        ("2 < 3 & 4 > 1", "2 < 3 & 4 > 1"),
        ("<b>bold</b> and <i>it</i>", "<b>bold</b> and <i>it</i>"),
        ("a<script>alert(1)</script>b", "ab"),
        ("a<SCRIPT type='x'>alert(1)</ScRiPt >b", "ab"),
        ("a<script>never closed", "a"),
        ("<scr<script>x</script>ipt>alert(1)</script>", ""),
        ("<sc<script></script>ript>alert(1)", ""),
        ("<img src=x onerror=alert(1)>", "<img src=x>"),
        ('<a href="javascript:go()">x</a>', "<a>x</a>"),
        ("<a href=' jav\tascript:go()'>x</a>", "<a>x</a>"),
        ('<a href="https://example.com">x</a>', '<a href="https://example.com">x</a>'),
        ("<iframe src=//evil></iframe>ok", "ok"),
        ('<div style="width: expression(alert(1))">x</div>', "<div>x</div>"),
        ("<meta http-equiv=refresh content=0>hi", "hi"),
        ("</script>stray end", "stray end"),
        ("<svg onload=alert(1)>", ""),
    ],
)
def test_harmful_html_goes_the_rest_stays(raw: str, clean: str) -> None:
    """Each harmful construct is removed; ordinary text and harmless markup are kept."""
    assert sanitize_text(raw) == clean


def test_huge_hostile_text_is_sanitized_in_linear_time() -> None:
    """Many unclosed script tags and a megabyte of angle brackets cost well under a
    second (no backtracking, one search per removed element)."""
    started = time.perf_counter()
    assert sanitize_text("x" + "<script>" * 100_000) == "x"
    assert sanitize_text("<" * 1_000_000) == "<" * 1_000_000
    assert sanitize_text("<b " * 200_000 + ">") == "<b " * 200_000 + ">"
    assert time.perf_counter() - started < 5


def test_deeply_nested_data_is_walked_without_recursion() -> None:
    """Data nested far deeper than Python's recursion limit is sanitized, keys too, and
    non-string values are kept as they were."""
    data: dict[str, object] = {"leaf": "<script>x</script>ok"}
    for _ in range(5000):
        data = {"<b onclick=x()>k</b>": [data, 1, None, True, 2.5]}
    clean = sanitize_data(data)
    node: object = clean
    for _ in range(5000):
        assert isinstance(node, dict)
        ((key, value),) = node.items()
        assert key == "<b>k</b>"
        assert value[1:] == [1, None, True, 2.5]
        node = value[0]
    assert node == {"leaf": "ok"}


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("no markers", [("no markers", True)]),
        ("a **b** c", [("a ", True), ("b", False), (" c", True)]),
        ("**all**", [("all", False)]),
        ("odd ** marker", [("odd ** marker", True)]),
        ("**a** **b** **c", [("a", False), (" ", True), ("b", False), (" **c", True)]),
        ("", []),
    ],
)
def test_markers_split_text_into_pieces(text: str, pieces: list[tuple[str, bool]]) -> None:
    """Marked pieces are kept apart without their markers; an unpaired marker is text."""
    assert [(p.text, p.translate) for p in split(text, "**")] == pieces


def test_markers_are_stripped_quickly_from_huge_text() -> None:
    """Stripping markers from a text made of nothing else is linear."""
    assert strip_markers("**x**" * 200_000, "**") == "x" * 200_000
    assert strip_markers("%%a%%b", "%%") == "ab"


def test_attachments_are_checked_field_by_field() -> None:
    """Well-formed attachments come back as given; an odd type names the field."""
    good = {"name": "n", "url": "https://x.example/a", "type": "image", "caption": "c"}
    assert parse_attachments({"attachments": [good]}) == [good]
    assert parse_attachments({"text": "no attachments"}) is None
    with pytest.raises(InvalidRequest) as err:
        parse_attachments({"attachments": [{"url": "https://x.example/a", "name": "\x00"}]})
    assert err.value.field == "attachments[0].name"
