"""The one layer that talks to an Engine: its client, the kinds of engine, who is who.

Imports ``model`` and ``errors``; never the init or the host tools.
"""
