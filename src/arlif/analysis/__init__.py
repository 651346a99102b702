"""Analysis of spiking models: firing rates (and, with the analysis issue, energy and plots)."""

from .monitor import FiringRateMonitor

__all__ = ["FiringRateMonitor"]
