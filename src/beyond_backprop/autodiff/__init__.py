"""Forward gradients, the cost of automatic differentiation, and its behaviour at kinks."""
