"""Training objectives that are shared by several families."""
