"""vipml: who will accept an upsell offer, who will become a VIP, and why."""

from vipml.config import Config, load_config
from vipml.errors import ConfigError, DataError, VipmlError
from vipml.io import Tables, ValidationReport, load_tables

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "DataError",
    "Tables",
    "ValidationReport",
    "VipmlError",
    "__version__",
    "load_config",
    "load_tables",
]
