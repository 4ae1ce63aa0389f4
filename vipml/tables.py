"""The data contract and its loader; kept as the import path of earlier releases.

Everything here lives in :mod:`vipml.io`.
"""

from vipml.io import *  # noqa: F403
from vipml.io import __all__  # noqa: F401
