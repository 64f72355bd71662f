"""Mininet topologies, link emulation and the experiments that reproduce the seed results."""
