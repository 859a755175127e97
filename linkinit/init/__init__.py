"""The init: what runs inside a parent container, from its options to COMMAND as PID 1.

Imports ``model`` and ``engine``; never the host tools.
"""
