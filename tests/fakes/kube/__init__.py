"""A protocol-faithful fake Kubernetes API server for tests (see ``FakeKubeAPI``)."""

from tests.fakes.kube.errors import ApiError, status_body
from tests.fakes.kube.server import FakeKubeAPI, Fault, RequestRecord

__all__ = ["ApiError", "FakeKubeAPI", "Fault", "RequestRecord", "status_body"]
