"""Kubernetes adapters (kubernetes-asyncio): clients, informers, probes, registry, status, join."""
