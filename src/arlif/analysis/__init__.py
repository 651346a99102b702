"""Analysis of spiking models: firing rates, SOPs and energy, plots."""

from .energy import E_AC_PJ, E_MAC_PJ, EnergyReport, energy_report, neuron_update_ops
from .monitor import FiringRateMonitor

__all__ = ["FiringRateMonitor", "energy_report", "EnergyReport", "neuron_update_ops", "E_MAC_PJ", "E_AC_PJ"]
