"""bench.scale --write files its tables in the Scale chapter of bench/RESULTS.md, not at
the file's end, so every scale run stays in one place."""

from bench.scale import SCALE_CHAPTER, into_chapter


def test_a_run_goes_at_the_end_of_its_chapter_before_the_next():
    document = f"# Results\n\n{SCALE_CHAPTER}\n\nsummary\n\n## Scale, old run\n\nold\n\n# Bulk import\n\nrows\n"
    updated = into_chapter(document, SCALE_CHAPTER, "## Scale, new run\n\nnew\n")
    assert updated == (f"# Results\n\n{SCALE_CHAPTER}\n\nsummary\n\n## Scale, old run\n\nold\n\n"
                       "## Scale, new run\n\nnew\n\n# Bulk import\n\nrows\n")


def test_without_the_chapter_or_a_next_one_it_goes_at_the_end():
    assert into_chapter("# Results\n\nx\n", SCALE_CHAPTER, "## run\n") == "# Results\n\nx\n\n## run\n"
    assert into_chapter(f"{SCALE_CHAPTER}\n\nx\n", SCALE_CHAPTER, "## run\n") == f"{SCALE_CHAPTER}\n\nx\n\n## run\n"
