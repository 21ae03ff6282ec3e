"""The fake API server's strict defaults: tokens, the project's real roles, refusals that fail tests."""

from __future__ import annotations

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from ingressfed.kube import join
from ingressfed.kube.informer import Informer, Resource
from tests.fakes.kube.server import FakeKubeAPI
from tests.kube.conftest import crd
from tests.kube.test_informer_history import Log


async def test_anonymous_reaches_only_the_health_and_version_paths() -> None:
    async with FakeKubeAPI() as api, aiohttp.ClientSession() as http:
        for path in ("/readyz", "/livez", "/healthz", "/version"):
            async with http.get(api.url + path) as r:
                assert r.status == 200, path
        async with http.get(api.url + "/api/v1/namespaces") as r:
            assert r.status == 401
        async with http.get(api.url + "/readyz", headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == 401  # a bad token is refused even where anonymous is welcome


async def test_member_identity_has_exactly_joins_rules() -> None:
    async with FakeKubeAPI(name="east", allow_forbidden=True) as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        assert (await v1.list_service_for_all_namespaces()).items == []
        assert (await client.DiscoveryV1Api(c).list_endpoint_slice_for_all_namespaces()).items == []
        with pytest.raises(ApiException) as exc:
            await v1.list_secret_for_all_namespaces()
        assert exc.value.status == 403
        assert "system:serviceaccount:ingressfed-system:ingressfed-east" in exc.value.body
        assert [(r.verb, r.resource) for r in api.forbidden] == [("list", "secrets")]
    role = api.get("clusterroles", "ingressfed-east")
    assert role is not None and role["rules"] == join.cluster_role_rules()


async def test_host_identity_has_the_charts_roles() -> None:
    async with FakeKubeAPI(identity="host", allow_forbidden=True) as api, api.api_client() as c:
        api.add(crd())
        custom = client.CustomObjectsApi(c)
        listed = await custom.list_cluster_custom_object("ingressfed.io", "v1alpha1", "federatedclusters")
        assert listed["items"] == []
        co = client.CoordinationV1Api(c)
        lease = client.V1Lease(metadata=client.V1ObjectMeta(name="ingressfed-controller"))
        await co.create_namespaced_lease("ingressfed-system", lease)
        assert (await co.read_namespaced_lease("ingressfed-controller", "ingressfed-system")).metadata
        with pytest.raises(ApiException) as exc:  # the Role names its Lease: no other one
            await co.read_namespaced_lease("someone-elses", "ingressfed-system")
        assert exc.value.status == 403
        with pytest.raises(ApiException) as exc:  # Secrets: get by name, never list
            await client.CoreV1Api(c).list_namespaced_secret("ingressfed-system")
        assert exc.value.status == 403
    kinds = {(o["kind"], o["metadata"]["name"]) for o in api.objects("clusterroles")}
    assert ("ClusterRole", "fed-ingressfed-ingressfed-system") in kinds  # rendered by helm from the chart


async def test_a_verb_missing_from_the_role_fails_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Code that swallows a 403 (the informer retries) still fails: close() lists what was refused."""
    rules = [r for r in join.cluster_role_rules() if r["resources"] != ["endpointslices"]]
    monkeypatch.setattr(join, "cluster_role_rules", lambda: rules)
    api = FakeKubeAPI(name="west")
    await api.start()
    log = Log()
    async with api.api_client() as c:
        informer = Informer(c, Resource("/apis/discovery.k8s.io/v1/endpointslices", "EndpointSlice"), log)
        await informer.run(iterations=1)
    assert [e.status for e in log.errors] == [403]  # the informer carries on ...
    with pytest.raises(AssertionError, match=r"(?s)RBAC refused 1 request.*list endpointslices"):
        await api.close()  # ... but the test does not pass


async def test_other_tokens_for_one_account_share_its_rights() -> None:
    async with FakeKubeAPI(identity="host") as api:
        token = api.add_token("replica-b")
        async with api.api_client(token=token) as c:
            co = client.CoordinationV1Api(c)
            lease = client.V1Lease(metadata=client.V1ObjectMeta(name="ingressfed-controller"))
            await co.create_namespaced_lease("ingressfed-system", lease)
        assert api.count(user="system:serviceaccount:ingressfed-system:fed-ingressfed", verb="create") == 1
