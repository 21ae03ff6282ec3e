"""Edges: proxies in every member cluster, their identity, health reports and the controller's registry."""
