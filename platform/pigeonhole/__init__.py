"""Pigeonhole host platform.

The host owns tenancy, the locker vocabulary and the plugin runtime. It never
imports a plugin: drivers, channels, access methods and workflows reach it only
through the hooks in :mod:`pigeonhole.hookspecs`.
"""

__version__ = "0.1.0"
