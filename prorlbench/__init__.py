"""prorlbench: a plugin-based benchmarking harness for proactive recommenders."""

from .hookspecs import hookimpl

__all__ = ["hookimpl", "__version__"]
__version__ = "0.1.0"
