"""Every grader has a mutation table: its solution, another right answer, eight wrong ones."""

import importlib
from pathlib import Path

from cnnkit.course import grading

LESSON_FILES = sorted(p.stem for p in Path(__file__).parent.glob("test_grading_[0-9][0-9].py"))


def tables():
    return [table for stem in LESSON_FILES for table in importlib.import_module(stem).TABLES]


def test_one_grader_test_file_per_lesson():
    assert [stem[-2:] for stem in LESSON_FILES] == sorted(grading.LESSONS)


def test_every_grader_has_a_table_with_right_and_wrong_answers():
    by_grader = {}
    for table in tables():
        assert table.check.__name__ not in by_grader, f"two tables for {table.check.__name__}"
        by_grader[table.check.__name__] = table
    graders = sorted(name for name in grading.__all__ if name.startswith("check_"))
    assert sorted(by_grader) == graders
    thin = {name: (len(t.right), len(t.wrong)) for name, t in by_grader.items()
            if len(t.right) < 1 or len(t.wrong) < 8}
    assert not thin, f"(other right answers, wrong answers) below (1, 8): {thin}"


def test_each_lesson_module_holds_its_own_graders():
    for number, module in grading.LESSONS.items():
        for name in module.__all__:
            assert getattr(grading, name) is getattr(module, name)
            assert getattr(module, name).__module__ == module.__name__, (number, name)
