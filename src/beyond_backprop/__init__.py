"""beyond_backprop: reproductions of four papers on training beyond plain backpropagation."""

__version__ = "0.1.0"
