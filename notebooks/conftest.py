"""nbval: compare notebook outputs but not stderr (warnings, progress bars)."""


def pytest_collectstart(collector):
    if getattr(collector, "skip_compare", None) is not None:
        collector.skip_compare += ("stderr", "application/javascript", "application/vnd.jupyter.widget-view+json")
