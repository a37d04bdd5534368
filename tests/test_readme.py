"""The README reads in the order a user needs it, its plan example is a valid plan, and every page it
and the docs/ pages link to exists (the details moved to docs/: links must not dangle)."""

from __future__ import annotations

import re
from pathlib import Path

from migrator.spec import parse_plan

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
SECTIONS = ["Two commands", "Writing a plan", "Commands", "Exit codes", "Compatibility", "Limits"]


def sections(text: str) -> list[str]:
    return re.findall(r"^## (.+)$", text, re.MULTILINE)


def test_the_sections_come_in_the_order_a_user_needs_them():
    assert sections(README.read_text()) == SECTIONS


def test_the_plan_example_is_a_valid_plan():
    text = README.read_text().split("## Writing a plan", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", text, re.DOTALL)
    assert example is not None
    spec = parse_plan(example.group(1), "README.md")
    assert spec.repository.type == "oss" and spec.snapshot.indices == ["logs-*", "orders"]


def test_every_linked_page_and_heading_exists():
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) >= 5
    for page in pages:
        for target in re.findall(r"\]\(([^)#]+\.md)(?:#([^)]+))?\)", page.read_text()):
            linked = (page.parent / target[0]).resolve()
            assert linked.is_file(), f"{page.name} links to a missing {target[0]}"
            if target[1]:
                anchors = {
                    re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
                    for h in re.findall(r"^#+ (.+)$", linked.read_text(), re.MULTILINE)
                }
                assert target[1] in anchors, f"{page.name} links to a missing heading {target[0]}#{target[1]}"
