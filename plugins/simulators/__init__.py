"""Built-in prorlbench plugins."""
