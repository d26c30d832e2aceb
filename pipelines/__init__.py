"""Orchestration over the DVC stages (ablation sweeps now; Prefect flows later)."""
