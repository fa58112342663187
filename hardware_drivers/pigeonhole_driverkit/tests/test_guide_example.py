"""The Acme AL-8 driver of docs/plugins/drivers.md, assembled from the guide's code
blocks as printed, passes the conformance kit: the guide's example is not a sketch."""

import re
from pathlib import Path

pytest_plugins = ["pytester"]
GUIDE = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "drivers.md"

FILES = {
    "### 2. The frames": "acme_al8/protocol.py",
    "### 3. The configuration and the driver": "acme_al8/driver.py",
    "### 4. The plugin": "acme_al8/__init__.py",
    "### 5. The simulator": "acme_al8/simulator.py",
    "### 6. The conformance kit": "test_al8_conformance.py",
}


def guide_blocks() -> dict[str, str]:
    text = GUIDE.read_text()
    found = {}
    for heading, path in FILES.items():
        section = text[text.index(heading) :]
        found[path] = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    return found


def test_the_guides_driver_passes_the_kit(pytester):
    for path, code in guide_blocks().items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-q",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "-o",
        "asyncio_mode=auto",
    )
    result.assert_outcomes(passed=18)
