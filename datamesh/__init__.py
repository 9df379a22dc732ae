"""datamesh: a local Data Mesh platform on Kubernetes, converged by one command."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
