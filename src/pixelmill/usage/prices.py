"""The price table of the settings (``[pixelmill.cost]``), and what a piece of work costs by
it."""

from __future__ import annotations

from dataclasses import dataclass

from pixelmill.config import Settings
from pixelmill.usage.meter import Work

GB = 1e9
"""Bytes in a gigabyte, as clouds bill them."""


@dataclass(frozen=True)
class Prices:
    """Money per unit, in whatever currency the settings use (all 0 by default)."""

    cpu_hour: float = 0.0
    gpu_hour: float = 0.0
    gb_stored_month: float = 0.0
    gb_egress: float = 0.0
    request: float = 0.0

    @classmethod
    def of(cls, settings: Settings) -> Prices:
        return cls(settings.cost_cpu_hour, settings.cost_gpu_hour,
                   settings.cost_gb_stored_month, settings.cost_gb_egress,
                   settings.cost_request)  # fmt: skip

    def cost(self, work: Work) -> float:
        """What ``work`` costs: its CPU and GPU hours, a month of storage for what it wrote,
        the egress of what it served, and one request."""
        return (work.cpu_seconds / 3600 * self.cpu_hour + work.gpu_seconds / 3600 * self.gpu_hour
                + work.bytes_written / GB * self.gb_stored_month
                + work.bytes_served / GB * self.gb_egress + self.request)  # fmt: skip
