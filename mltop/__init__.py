"""mltop: one live terminal screen for ML platforms (Ray jobs, GPU nodes, idle GPU cost)."""

__version__ = "0.1.0"
