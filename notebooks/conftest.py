"""nbval: compare notebook outputs but not stderr (warnings, progress bars); read the user's paths once."""

from pathlib import Path

from beyond_backprop.data.sources import make_environment_absolute


def pytest_configure(config):
    """Before any kernel starts: relative paths are read from the folder where pytest was typed."""
    make_environment_absolute(config.invocation_params.dir)
    sanitize = config.getoption("nbval_sanitize_with", None)
    if sanitize and not (config.invocation_params.dir / sanitize).is_file():
        config.option.nbval_sanitize_with = str(config.rootpath / sanitize)  # pyproject's path, from the root


def pytest_collectstart(collector):
    if getattr(collector, "skip_compare", None) is not None:
        collector.skip_compare += ("stderr", "application/javascript", "application/vnd.jupyter.widget-view+json")
