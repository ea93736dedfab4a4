"""One function per experiment: the sweeps that each notebook calls."""
