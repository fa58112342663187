"""The plugin authors' guide keeps up with the plugin API (as datasette checks its hooks).

A hook added to ``pigeonhole.hookspecs`` or a name added to ``pigeonhole.api``
without a section in ``docs/plugins/`` fails here, and so does a section left
behind for a hook that no longer exists, an example that no longer parses or a
file the guide points to that moved.
"""

from __future__ import annotations

import ast
import inspect
import re
import tomllib
from pathlib import Path

import pytest
from pigeonhole import api, hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "plugins"
GUIDE = ["README.md", "hooks.md", "objects.md", "packaging.md"]


def hookspec_names() -> dict[str, object]:
    """Every function pluggy's marker flagged as a hook specification."""
    marker = f"{hookspecs.hookspec.project_name}_spec"
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if getattr(fn, marker, None) is not None
    }


def sections(path: Path) -> dict[str, str]:
    """``## heading`` -> the text under it, up to the next ``## ``."""
    found: dict[str, str] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            found[current] = ""
        elif current is not None:
            found[current] += line + "\n"
    return found


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_there_are_hooks_to_document():
    assert {"pigeonhole_channels", "pigeonhole_custody_event", "pigeonhole_routes"} <= set(hookspec_names())


def test_every_hook_has_a_section_in_hooks_md():
    documented = sections(DOCS / "hooks.md")
    missing = sorted(set(hookspec_names()) - set(documented))
    assert not missing, f"undocumented hooks, add a '## <hook>' section to docs/plugins/hooks.md: {missing}"


def test_hooks_md_documents_no_hook_that_does_not_exist():
    documented = {h for h in sections(DOCS / "hooks.md") if h.startswith("pigeonhole_")}
    stale = sorted(documented - set(hookspec_names()))
    assert not stale, f"docs/plugins/hooks.md documents hooks that do not exist: {stale}"


def test_each_hook_section_shows_its_signature():
    documented = sections(DOCS / "hooks.md")
    wrong = []
    for name, fn in hookspec_names().items():
        text = documented.get(name, "")
        args = [a for a in inspect.signature(fn).parameters if a != "self"]
        # "def name(self, arg: Type, ...)", each argument with any annotation.
        params = "".join(", " + re.escape(a) + r"\b[^,)]*" for a in args)
        if not re.search(rf"def {name}\(self{params}\)", text):
            wrong.append(f"{name}({', '.join(args)})")
    assert not wrong, f"hooks.md does not show these signatures as 'def name(self, ...)': {wrong}"


def test_every_public_api_name_has_a_section_in_objects_md():
    documented = sections(DOCS / "objects.md")
    missing = sorted(set(api.__all__) - set(documented))
    assert not missing, f"names of pigeonhole.api not documented in docs/plugins/objects.md: {missing}"


@pytest.mark.parametrize("page", GUIDE)
def test_examples_parse(page):
    text = (DOCS / page).read_text()
    for block in code_blocks(text, "python"):
        ast.parse(block)
    for block in code_blocks(text, "toml"):
        tomllib.loads(block)


@pytest.mark.parametrize("page", GUIDE)
def test_links_between_pages_land_on_a_heading(page):
    text = (DOCS / page).read_text()
    broken = []
    for target, anchor in re.findall(r"\]\(([\w.-]*\.md)?(?:#([\w-]+))?\)", text):
        path = DOCS / (target or page)
        if not path.exists():
            broken.append(f"{target}#{anchor}")
            continue
        headings = {slug(h.lstrip("#")) for h in path.read_text().splitlines() if h.startswith("#")}
        if anchor and anchor not in headings:
            broken.append(f"{target or page}#{anchor}")
    assert not broken, f"{page}: links to nothing: {broken}"


@pytest.mark.parametrize("page", GUIDE)
def test_files_the_guide_points_to_exist(page):
    text = (DOCS / page).read_text()
    named = re.findall(r"`((?:plugins|hardware_drivers|platform|tests)/[\w/.-]+)`", text)
    missing = sorted({path for path in named if not (ROOT / path).exists()})
    assert not missing, f"{page} points to files that are not there: {missing}"
