"""The built-in backends. Importing this package registers them (see `mltop.registry`)."""

from mltop.backends import kfp, kubernetes, prometheus, ray  # noqa: F401  (each registers itself)
