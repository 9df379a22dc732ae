"""The testbeds: a real Kubernetes control plane with KWOK nodes (cluster.py) and the platform's
programs run natively from the rendered configs (services.py, one module per service). Both cache
what they build by version (common.py). Joined (joined.py), the cluster's pods reach the programs.

    python -m testbed.cluster build|up|down|env|size
    python -m testbed.services install|up|down|status
    python -m testbed.joined up|down|status
"""
