"""The README results table that `make bench` refreshes (benchmarks/results.py)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import results
from benchmarks.results import Row


def test_a_module_run_alone_replaces_its_rows_and_keeps_the_others(tmp_path: Path) -> None:
    store = tmp_path / "rows.json"
    results.record("bench_a", [Row("A", "x", "1", "2", "soft")], store)
    results.record("bench_b", [Row("B", "y", "3")], store)
    data = results.record("bench_a", [Row("A", "x", "5", "2", "soft")], store)
    block = results.render(data)
    assert "| A | x | 5 | 2 | soft |" in block
    assert "| A | x | 1 |" not in block
    assert "| B | y | 3 | - | - |" in block
    assert block.startswith(results.BEGIN) and block.endswith(results.END)
    assert "cores" in block  # the machine is named


def test_readme_block_is_replaced_between_the_markers_only(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# top\n\n{results.BEGIN}\nold table\n{results.END}\n\n## after\n")
    data = results.record("bench_a", [Row("A", "x", "1")], tmp_path / "rows.json")
    assert results.refresh_readme(data, readme)
    text = readme.read_text()
    assert text.startswith("# top\n\n") and text.endswith("\n\n## after\n")
    assert "old table" not in text and "| A | x | 1 |" in text
    bare = tmp_path / "OTHER.md"
    bare.write_text("no markers\n")
    assert not results.refresh_readme(data, bare)
    assert bare.read_text() == "no markers\n"


def test_the_readme_has_the_markers() -> None:
    text = results.README.read_text()
    assert text.index(results.BEGIN) < text.index(results.END)
