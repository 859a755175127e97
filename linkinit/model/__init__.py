"""The shared model: what declarations, containers, swarm objects and link variables mean.

Pure: plain data in, plain data out; no socket, no process, no file. Imports nothing of
linkinit but ``errors``.
"""
