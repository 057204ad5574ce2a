"""Kubernetes launcher: steps as pods, scoring as an MPIJob (Kubeflow MPI Operator)."""
