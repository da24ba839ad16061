"""Kubernetes: the plan as manifests (`portlab render LAB --format kubernetes`).

Only the rendering exists so far, validated offline against the Kubernetes
schemas; no `Backend` runs these manifests yet (docs/scaling.md has the
design and what breaks). Nothing here imports the Docker backend.
"""
