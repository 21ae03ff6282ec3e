"""Entry point for tests that need Kubernetes clusters: ``from tests.fakes.kube_api import FakeKubeAPI``.

The implementation lives in the ``tests.fakes.kube`` package (resources, selectors, store, server).
"""

from tests.fakes.kube import ApiError, FakeKubeAPI, Fault, RequestRecord, status_body

__all__ = ["ApiError", "FakeKubeAPI", "Fault", "RequestRecord", "status_body"]
