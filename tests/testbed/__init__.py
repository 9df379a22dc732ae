"""Integration testbeds (see cluster.py)."""
