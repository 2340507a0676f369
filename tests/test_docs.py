"""Every ```python block in the user's guide and the README runs as written (page by
page, in order, sharing one namespace per page). A block whose first line starts with
``# skip-test:`` says why it cannot run here (a GPU, a remote cluster) and is skipped."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts) + \
    [ROOT / "README.md"]


def python_blocks(page):
    return [block for block in BLOCK.findall(page.read_text())
            if not block.lstrip().startswith("# skip-test:")]


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"docs_{page.stem}"}
    for number, block in enumerate(python_blocks(page), start=1):
        code = compile(block, f"{page.name} block {number}", "exec")
        exec(code, namespace)
