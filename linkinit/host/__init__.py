"""The host tools: ``linkinit ls``, ``linkinit guard`` and ``linkinit proxy``.

Imports ``model`` and ``engine``; never the init.
"""
