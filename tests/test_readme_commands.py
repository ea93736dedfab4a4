"""CI runs the README's set-up and test commands character for character."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands(marker: str) -> list[str]:
    """The lines of the fenced bash block right after ``<!-- ci: marker -->`` in the README."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(rf"<!-- ci: {marker} -->\n```bash\n(.*?)```", text, re.S)
    assert len(blocks) == 1, f"README needs exactly one ```bash block marked <!-- ci: {marker} -->"
    return [line for line in blocks[0].splitlines() if line.strip()]


def test_ci_runs_the_readme_commands_verbatim():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    for marker in ("setup", "test"):
        commands = readme_commands(marker)
        assert commands, f"the README's {marker} block is empty"
        for command in commands:
            assert command in ci_lines, f".ci/run does not run the README's {marker} command {command!r} verbatim"


def test_the_readme_commands_are_the_ones_a_user_types():
    assert readme_commands("setup") == ['pip install -e ".[dev]"']
    assert readme_commands("test") == ["BEYOND_BACKPROP_DATA=../shared/data pytest"]
