"""pytest, whatever it runs (tests/, nbval over notebooks/): read the user's paths once, before any kernel starts."""

from beyond_backprop.data.sources import make_environment_absolute


def pytest_configure(config):
    """Relative paths are read from the folder where pytest was typed; kernels run elsewhere."""
    make_environment_absolute(config.invocation_params.dir)
    sanitize = config.getoption("nbval_sanitize_with", None)
    if sanitize and not (config.invocation_params.dir / sanitize).is_file():
        config.option.nbval_sanitize_with = str(config.rootpath / sanitize)  # pyproject's path, from the root
