"""Pictures that hold at any zoom: every step of a lesson, in presentation layout, in
both languages, at 100 % and 200 %, at 1280x720 and 1920x1080, with every text
measured against its box (the other lessons are measured where they are recorded)."""
from __future__ import annotations

from pathlib import Path

import pytest

from visualizer.lessons import all_lessons, prepare
from lesson_window import unfit  # tests/qt/


@pytest.fixture(autouse=True)
def zoom_given_back():  # type: ignore[no-untyped-def]
    """The zoom is the style module's state: the next module starts at 100 %."""
    yield
    from visualizer.views import style
    style.set_zoom(1.0)


@pytest.fixture(scope="module")
def first(tmp_path_factory):  # type: ignore[no-untyped-def]
    return prepare(all_lessons()["first-request"], tmp_path_factory.mktemp("first"))


def test_first_request_fits_at_any_zoom_in_both_languages(qtbot, first, tmp_path: Path
                                                          ) -> None:  # type: ignore[no-untyped-def]
    found = unfit(qtbot, first, tmp_path, zooms=(1.0, 2.0))
    assert not found, "\n".join(found[:40])
