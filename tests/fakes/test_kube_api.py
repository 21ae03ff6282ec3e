"""The fake API server, driven through kubernetes-asyncio unchanged, behaves like a real one."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from tests.fakes.kube_api import FakeKubeAPI


def Admin(**kw: Any) -> FakeKubeAPI:
    """These tests check the API semantics the fake implements, so they act as cluster admin; the
    default identities (join's member account, the chart's controller account) have tests of their own."""
    return FakeKubeAPI(identity="admin", **kw)


def _svc(name: str, *, labels: dict[str, str] | None = None, lb: bool = True) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1ServiceSpec(type="LoadBalancer" if lb else None, ports=[client.V1ServicePort(port=80)]),
    )


def _status(e: ApiException) -> dict[str, Any]:
    body = json.loads(e.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == e.status
    return body


async def _events(stream: watch.Watch, count: int) -> list[dict[str, Any]]:
    out = []
    async for ev in stream:
        out.append(ev)
        if len(out) == count:
            break
    return out


async def test_crud_round_trip_with_real_server_rules() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        created = await v1.create_namespaced_service("default", _svc("web"))
        assert created.metadata.uid and created.metadata.creation_timestamp
        assert created.spec.cluster_ip and created.spec.ports[0].node_port
        rv1 = int(created.metadata.resource_version)

        with pytest.raises(ApiException) as exc:
            await v1.create_namespaced_service("default", _svc("web"))
        assert exc.value.status == 409 and _status(exc.value)["reason"] == "AlreadyExists"

        got = await v1.read_namespaced_service("web", "default")
        got.metadata.labels = {"tier": "front"}
        replaced = await v1.replace_namespaced_service("web", "default", got)
        assert int(replaced.metadata.resource_version) > rv1

        got.metadata.labels = {"tier": "stale"}  # still carries the old resourceVersion
        with pytest.raises(ApiException) as exc:
            await v1.replace_namespaced_service("web", "default", got)
        assert exc.value.status == 409 and _status(exc.value)["reason"] == "Conflict"

        patched = await v1.patch_namespaced_service(
            "web", "default", {"metadata": {"annotations": {"a": "1"}}}
        )
        assert patched.metadata.annotations == {"a": "1"} and patched.metadata.labels == {"tier": "front"}

        status = await v1.patch_namespaced_service_status(
            "web", "default", {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}}
        )
        assert status.status.load_balancer.ingress[0].ip == "192.0.2.1"
        # The main resource ignores status; the status subresource ignores everything else.
        body = (await v1.read_namespaced_service("web", "default")).to_dict()
        assert body["status"]["load_balancer"]["ingress"][0]["ip"] == "192.0.2.1"

        await v1.delete_namespaced_service("web", "default")
        with pytest.raises(ApiException) as exc:
            await v1.read_namespaced_service("web", "default")
        assert exc.value.status == 404
        assert _status(exc.value)["details"] == {"kind": "services", "name": "web"}
        with pytest.raises(ApiException) as exc:
            await v1.delete_namespaced_service("web", "default")
        assert exc.value.status == 404


async def test_create_rules_generate_name_namespace_and_validation() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        cm = await v1.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="cfg-"))
        )
        assert cm.metadata.name.startswith("cfg-") and len(cm.metadata.name) > len("cfg-")
        with pytest.raises(ApiException) as exc:
            await v1.create_namespaced_config_map(
                "missing", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"))
            )
        assert exc.value.status == 404 and "namespaces" in _status(exc.value)["message"]
        with pytest.raises(ApiException) as exc:
            await v1.create_namespaced_service("default", _svc("Not_A_Name"))
        assert exc.value.status == 422 and _status(exc.value)["reason"] == "Invalid"
        # Planting objects directly skips validation, so tests can feed hostile input to the controller.
        api.add(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "Bad_Name", "namespace": "default"}}
        )
        names = [s.metadata.name for s in (await v1.list_service_for_all_namespaces()).items]
        assert "Bad_Name" in names


async def test_list_namespaced_cluster_wide_and_selectors() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        await v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="other")))
        await v1.create_namespaced_service("default", _svc("a", labels={"fed": "true", "tier": "web"}))
        await v1.create_namespaced_service("default", _svc("b", labels={"fed": "false"}))
        await v1.create_namespaced_service("other", _svc("c", labels={"fed": "true"}))

        everywhere = await v1.list_service_for_all_namespaces()
        assert [(s.metadata.namespace, s.metadata.name) for s in everywhere.items] == [
            ("default", "a"),
            ("default", "b"),
            ("other", "c"),
        ]
        assert [s.metadata.name for s in (await v1.list_namespaced_service("other")).items] == ["c"]

        async def names(**kw: Any) -> list[str]:
            return [s.metadata.name for s in (await v1.list_service_for_all_namespaces(**kw)).items]

        assert await names(label_selector="fed=true") == ["a", "c"]
        assert await names(label_selector="fed!=true") == ["b"]
        assert await names(label_selector="fed in (true,false),tier") == ["a"]
        assert await names(label_selector="!tier") == ["b", "c"]
        assert await names(field_selector="metadata.namespace=other") == ["c"]
        assert await names(field_selector="metadata.name!=a,metadata.namespace=default") == ["b"]
        with pytest.raises(ApiException) as exc:
            await names(field_selector="spec.type=LoadBalancer")
        assert exc.value.status == 400 and "not supported" in _status(exc.value)["message"]
        with pytest.raises(ApiException) as exc:
            await names(label_selector="a in (b")
        assert exc.value.status == 400


async def test_pagination_is_a_consistent_snapshot_and_expires_after_compaction() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        for i in range(25):
            api.add(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": f"s{i:02d}", "namespace": "default"},
                }
            )
        first = await v1.list_namespaced_service("default", limit=10)
        assert len(first.items) == 10 and first.metadata.remaining_item_count == 15
        # Changes after the first page do not show up in later pages of the same list.
        await v1.delete_namespaced_service("s15", "default")
        api.add({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s99", "namespace": "default"}})
        names = [s.metadata.name for s in first.items]
        token = first.metadata._continue
        while token:
            page = await v1.list_namespaced_service("default", limit=10, _continue=token)
            assert page.metadata.resource_version == first.metadata.resource_version
            names += [s.metadata.name for s in page.items]
            token = page.metadata._continue
        assert names == [f"s{i:02d}" for i in range(25)]

        again = await v1.list_namespaced_service("default", limit=10)
        api.compact()
        with pytest.raises(ApiException) as exc:
            await v1.list_namespaced_service("default", limit=10, _continue=again.metadata._continue)
        assert exc.value.status == 410 and _status(exc.value)["reason"] == "Expired"


async def test_watch_replays_from_resource_version_and_sends_bookmarks() -> None:
    async with Admin(bookmark_interval=0.1) as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        await v1.create_namespaced_service("default", _svc("before"))
        listed = await v1.list_namespaced_service("default")
        await v1.create_namespaced_service("default", _svc("web"))
        await v1.patch_namespaced_service("web", "default", {"metadata": {"labels": {"x": "y"}}})
        await v1.delete_namespaced_service("web", "default")
        w = watch.Watch()
        stream = w.stream(
            v1.list_namespaced_service,
            "default",
            resource_version=listed.metadata.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=10,
        )
        events = await _events(stream, 4)
        await w.close()
        assert [(e["type"], e["raw_object"]["metadata"].get("name")) for e in events] == [
            ("ADDED", "web"),
            ("MODIFIED", "web"),
            ("DELETED", "web"),
            ("BOOKMARK", None),
        ]
        rvs = [int(e["raw_object"]["metadata"]["resourceVersion"]) for e in events]
        assert rvs == sorted(rvs) and rvs[-1] == api.resource_version
        assert isinstance(events[0]["object"], client.V1Service)


async def test_watch_without_resource_version_starts_with_current_state() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        await v1.create_namespaced_service("default", _svc("a"))
        w = watch.Watch()
        stream = w.stream(v1.list_namespaced_service, "default", timeout_seconds=10)
        first = await _events(stream, 1)
        await v1.create_namespaced_service("default", _svc("b"))
        second = await _events(stream, 1)
        await w.close()
        assert [(e["type"], e["object"].metadata.name) for e in first + second] == [
            ("ADDED", "a"),
            ("ADDED", "b"),
        ]


async def test_watch_with_selector_sees_objects_enter_and_leave() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        await v1.create_namespaced_service("default", _svc("a"))
        rv = (await v1.list_namespaced_service("default")).metadata.resource_version
        await v1.patch_namespaced_service("a", "default", {"metadata": {"labels": {"fed": "true"}}})
        await v1.patch_namespaced_service("a", "default", {"metadata": {"labels": {"fed": "no"}}})
        w = watch.Watch()
        stream = w.stream(
            v1.list_namespaced_service,
            "default",
            label_selector="fed=true",
            resource_version=rv,
            timeout_seconds=10,
        )
        events = await _events(stream, 2)
        await w.close()
        assert [e["type"] for e in events] == ["ADDED", "DELETED"]


async def test_watch_timeout_seconds_ends_the_stream() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        w = watch.Watch()
        got = [
            e
            async for e in w.stream(
                v1.list_namespaced_service, "default", resource_version="1", timeout_seconds=1
            )
        ]
        assert got == []


async def test_watch_from_compacted_resource_version_is_410_gone() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        old = (await v1.list_namespaced_service("default")).metadata.resource_version
        await v1.create_namespaced_service("default", _svc("a"))
        api.compact()
        w = watch.Watch()
        with pytest.raises(ApiException) as exc:
            async for _ in w.stream(
                v1.list_namespaced_service, "default", resource_version=old, timeout_seconds=5
            ):
                pass
        assert exc.value.status == 410 and "too old resource version" in exc.value.reason


async def test_history_size_bounds_replay() -> None:
    async with Admin(history_size=5) as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        rv = (await v1.list_namespaced_service("default")).metadata.resource_version
        for i in range(10):
            await v1.create_namespaced_config_map(
                "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"c{i}"))
            )
        with pytest.raises(ApiException) as exc:
            async for _ in watch.Watch().stream(
                v1.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5
            ):
                pass
        assert exc.value.status == 410


async def test_open_watch_expired_by_compaction_gets_error_event() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        rv = (await v1.list_namespaced_service("default")).metadata.resource_version
        w = watch.Watch()
        stream = w.stream(v1.list_namespaced_service, "default", resource_version=rv, timeout_seconds=10)
        task = asyncio.ensure_future(_events(stream, 1))
        while api.open_watches == 0:
            await asyncio.sleep(0.01)
        api.compact(expire_watches=True)
        with pytest.raises(ApiException) as exc:
            await task
        assert exc.value.status == 410


async def _raw_watch_lines(api: FakeKubeAPI, path: str) -> tuple[list[bytes], BaseException | None]:
    """Read a watch stream to its end with a plain HTTP client, returning lines and the error (if any)."""
    lines: list[bytes] = []
    headers = {"Authorization": f"Bearer {api.token_for()}"}
    async with aiohttp.ClientSession() as s, s.get(api.url + path, headers=headers) as r:
        assert r.status == 200, await r.text()
        try:
            async for line in r.content:
                lines.append(line)
        except aiohttp.ClientError as e:
            return lines, e
    return lines, None


async def test_dropped_stream_cuts_an_event_in_half_and_resume_loses_nothing() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        rv = (await v1.list_namespaced_service("default")).metadata.resource_version
        reader = asyncio.ensure_future(
            _raw_watch_lines(api, f"/api/v1/namespaces/default/services?watch=true&resourceVersion={rv}")
        )
        while api.open_watches == 0:
            await asyncio.sleep(0.01)
        assert api.drop_watches(at_next_event=True) == 1
        await v1.create_namespaced_service("default", _svc("lost-in-transit"))
        lines, error = await asyncio.wait_for(reader, 10)
        assert error is not None or (lines and not lines[-1].endswith(b"\n"))
        assert all(not line.endswith(b"\n") for line in lines)  # only a partial line arrived
        # Resuming from the last resourceVersion the client saw replays the cut event whole.
        w = watch.Watch()
        events = await _events(
            w.stream(v1.list_namespaced_service, "default", resource_version=rv, timeout_seconds=5), 1
        )
        await w.close()
        assert events[0]["type"] == "ADDED" and events[0]["object"].metadata.name == "lost-in-transit"


async def test_dropped_stream_now_breaks_the_kubernetes_client_watch() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        w = watch.Watch()
        stream = w.stream(v1.list_namespaced_service, "default", resource_version="1", timeout_seconds=10)
        task = asyncio.ensure_future(_events(stream, 1))
        while api.open_watches == 0:
            await asyncio.sleep(0.01)
        api.drop_watches()
        try:
            got = await asyncio.wait_for(task, 10)
        except (aiohttp.ClientError, ApiException) as e:  # the client surfaces the broken payload
            got = [e]
        # Either an exception or a non-event (the half line) reaches the caller; never a valid event.
        assert not (isinstance(got[0], dict) and got[0].get("type") in {"ADDED", "MODIFIED", "DELETED"})


async def test_lease_updates_conflict_on_stale_resource_version() -> None:
    async with Admin() as api, api.api_client() as c:
        coord = client.CoordinationV1Api(c)
        lease = client.V1Lease(
            metadata=client.V1ObjectMeta(name="leader"),
            spec=client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15),
        )
        created = await coord.create_namespaced_lease("default", lease)
        created.spec.holder_identity = "b"
        await coord.replace_namespaced_lease("leader", "default", created)
        created.spec.holder_identity = "c"
        with pytest.raises(ApiException) as exc:
            await coord.replace_namespaced_lease("leader", "default", created)
        assert exc.value.status == 409
        assert (await coord.read_namespaced_lease("leader", "default")).spec.holder_identity == "b"
        # Injected conflicts answer like a real concurrent writer won.
        api.fail(409, times=1, verb="update", resource="leases")
        fresh = await coord.read_namespaced_lease("leader", "default")
        with pytest.raises(ApiException) as exc:
            await coord.replace_namespaced_lease("leader", "default", fresh)
        assert exc.value.status == 409 and "the object has been modified" in _status(exc.value)["message"]
        await coord.replace_namespaced_lease("leader", "default", fresh)


async def test_token_request_issues_a_working_token_revoked_with_its_account(tmp_path: Path) -> None:
    # Authentication alone (the reader has no roles): the token works, then dies with its account.
    async with Admin(enforce_rbac=False) as api:
        async with api.api_client() as c:
            v1 = client.CoreV1Api(c)
            await v1.create_namespaced_service_account(
                "default", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
            )
            tr = await v1.create_namespaced_service_account_token(
                "reader",
                "default",
                client.AuthenticationV1TokenRequest(
                    spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
                ),
            )
            token = tr.status.token
            assert token and tr.status.expiration_timestamp
        api.write_kubeconfig(tmp_path / "kc", context="member", token=token)
        member = await config.new_client_from_config(config_file=str(tmp_path / "kc"), context="member")
        async with member:
            assert (await client.CoreV1Api(member).list_namespace()).items
        assert api.count(user="system:serviceaccount:default:reader", verb="list") == 1
        async with api.api_client() as c:
            await client.CoreV1Api(c).delete_namespaced_service_account("reader", "default")
        async with api.api_client(token=token) as c:
            with pytest.raises(ApiException) as exc:
                await client.CoreV1Api(c).list_namespace()
            assert exc.value.status == 401


async def test_service_account_token_secret_is_filled_by_the_token_controller() -> None:
    async with Admin(tls=True) as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        await v1.create_namespaced_service_account(
            "default", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="sa"))
        )
        await v1.create_namespaced_secret(
            "default",
            client.V1Secret(
                metadata=client.V1ObjectMeta(
                    name="sa-token", annotations={"kubernetes.io/service-account.name": "sa"}
                ),
                type="kubernetes.io/service-account-token",
            ),
        )
        secret = await v1.read_namespaced_secret("sa-token", "default")
        token = base64.b64decode(secret.data["token"]).decode()
        assert base64.b64decode(secret.data["ca.crt"]) == api.ca_pem
        async with api.api_client(token=token) as member:
            assert (await client.VersionApi(member).get_code()).major == "1"


async def test_injected_403_is_an_api_exception_with_a_status_body() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        fault = api.fail(403, verb="list", resource="services")
        with pytest.raises(ApiException) as exc:
            await v1.list_namespaced_service("default")
        body = _status(exc.value)
        assert exc.value.status == 403 and body["reason"] == "Forbidden" and "cannot list" in body["message"]
        assert (await v1.list_namespace()).items  # other requests are unaffected
        fault.remove()
        assert (await v1.list_namespaced_service("default")).items == []


async def test_5xx_n_times_then_success_and_request_counts() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        fault = api.fail(503, times=2, path="/api/v1/namespaces$")
        for _ in range(2):
            with pytest.raises(ApiException) as exc:
                await v1.list_namespace()
            assert exc.value.status == 503 and _status(exc.value)["reason"] == "ServiceUnavailable"
        assert (await v1.list_namespace()).items
        assert fault.hits == 2
        assert api.count(verb="list", resource="namespaces") == 3


async def test_slow_responses_trip_client_timeouts() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        api.delay(5, verb="get", resource="namespaces")
        with pytest.raises(asyncio.TimeoutError):
            await v1.read_namespace("default", _request_timeout=0.2)
        assert (await v1.list_namespace(_request_timeout=2)).items


async def test_stop_makes_the_server_unreachable_and_start_brings_it_back_on_the_same_port() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        await v1.create_namespaced_service("default", _svc("kept"))
        url = api.url
        await api.stop()
        with pytest.raises(aiohttp.ClientConnectorError):
            await v1.list_namespaced_service("default")
        await api.start()
        assert api.url == url
        assert [s.metadata.name for s in (await v1.list_namespaced_service("default")).items] == ["kept"]


async def test_custom_resources_follow_their_crd() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "federatedclusters.ingressfed.io"},
        "spec": {
            "group": "ingressfed.io",
            "scope": "Cluster",
            "names": {
                "plural": "federatedclusters",
                "singular": "federatedcluster",
                "kind": "FederatedCluster",
            },
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }
    async with Admin() as api, api.api_client() as c:
        custom = client.CustomObjectsApi(c)
        with pytest.raises(ApiException) as exc:
            await custom.list_cluster_custom_object("ingressfed.io", "v1alpha1", "federatedclusters")
        assert exc.value.status == 404
        await client.ApiextensionsV1Api(c).create_custom_resource_definition(crd)
        body = {
            "apiVersion": "ingressfed.io/v1alpha1",
            "kind": "FederatedCluster",
            "metadata": {"name": "us-east1"},
            "spec": {"region": "us-east1"},
        }
        made = await custom.create_cluster_custom_object(
            "ingressfed.io", "v1alpha1", "federatedclusters", body
        )
        assert made["metadata"]["generation"] == 1
        made["spec"]["region"] = "us-west1"
        made["status"] = {"ignored": True}
        updated = await custom.replace_cluster_custom_object(
            "ingressfed.io", "v1alpha1", "federatedclusters", "us-east1", made
        )
        assert updated["metadata"]["generation"] == 2 and "status" not in updated
        del made["metadata"]["resourceVersion"]
        with pytest.raises(ApiException) as exc:  # custom resources need a resourceVersion to update
            await custom.replace_cluster_custom_object(
                "ingressfed.io", "v1alpha1", "federatedclusters", "us-east1", made
            )
        assert exc.value.status == 422
        patch = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        with pytest.raises(ApiException) as exc:  # a dict body goes out as json-patch unless told otherwise
            await custom.patch_cluster_custom_object_status(
                "ingressfed.io", "v1alpha1", "federatedclusters", "us-east1", patch
            )
        assert exc.value.status == 400
        st = await custom.patch_cluster_custom_object_status(
            "ingressfed.io",
            "v1alpha1",
            "federatedclusters",
            "us-east1",
            patch,
            _content_type="application/merge-patch+json",
        )
        assert st["status"]["conditions"][0]["type"] == "Ready" and st["metadata"]["generation"] == 2
        listed = await custom.list_cluster_custom_object("ingressfed.io", "v1alpha1", "federatedclusters")
        assert [i["metadata"]["name"] for i in listed["items"]] == ["us-east1"]
        assert listed["items"][0]["kind"] == "FederatedCluster"
        await client.ApiextensionsV1Api(c).delete_custom_resource_definition(
            "federatedclusters.ingressfed.io"
        )
        with pytest.raises(ApiException) as exc:
            await custom.list_cluster_custom_object("ingressfed.io", "v1alpha1", "federatedclusters")
        assert exc.value.status == 404


async def test_kubeconfig_with_two_clusters_reaches_each(tmp_path: Path) -> None:
    path = tmp_path / "config"
    async with Admin(name="east") as east, Admin(name="west", tls=True) as west:
        east.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "only-east"}})
        east.write_kubeconfig(path, context="east")
        west.write_kubeconfig(path, context="west", make_current=False)
        for ctx, expect in (("east", True), ("west", False)):
            api_client = await config.new_client_from_config(config_file=str(path), context=ctx)
            async with api_client:
                names = {n.metadata.name for n in (await client.CoreV1Api(api_client).list_namespace()).items}
            assert ("only-east" in names) is expect
        loader = config.kube_config._get_kube_config_loader_for_yaml_file(str(path))
        assert loader.current_context["name"] == "east"


async def test_namespace_deletion_removes_its_objects() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        await v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="gone")))
        await v1.create_namespaced_service("gone", _svc("a"))
        await v1.delete_namespace("gone")
        assert api.objects("services") == []


async def test_discovery_version_and_health_endpoints() -> None:
    async with Admin() as api, api.api_client() as c:
        groups = await client.ApisApi(c).get_api_versions()
        names = {g.name for g in groups.groups}
        assert {"networking.k8s.io", "discovery.k8s.io", "coordination.k8s.io"} <= names
        core = await client.CoreV1Api(c).get_api_resources()
        assert {"services", "services/status", "serviceaccounts/token"} <= {r.name for r in core.resources}
        async with aiohttp.ClientSession() as s:
            async with s.get(api.url + "/readyz") as r:
                assert r.status == 200 and await r.text() == "ok"
            api.ready = False
            async with s.get(api.url + "/readyz") as r:
                assert r.status == 500


async def test_rbac_grants_a_read_only_service_account_exactly_what_its_roles_say() -> None:
    async with Admin(allow_forbidden=True) as api:  # the refusals are what this test checks
        async with api.api_client() as c:  # the admin token bypasses RBAC
            v1, rbac = client.CoreV1Api(c), client.RbacAuthorizationV1Api(c)
            await v1.create_namespaced_service_account(
                "default", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
            )
            await rbac.create_cluster_role(
                client.V1ClusterRole(
                    metadata=client.V1ObjectMeta(name="read-services"),
                    rules=[
                        client.V1PolicyRule(
                            api_groups=[""], resources=["services"], verbs=["get", "list", "watch"]
                        )
                    ],
                )
            )
            await rbac.create_cluster_role_binding(
                client.V1ClusterRoleBinding(
                    metadata=client.V1ObjectMeta(name="reader"),
                    role_ref=client.V1RoleRef(
                        api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="read-services"
                    ),
                    subjects=[
                        client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace="default")
                    ],
                )
            )
            tr = await v1.create_namespaced_service_account_token(
                "reader",
                "default",
                client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
            )
        async with api.api_client(token=tr.status.token) as member:
            mv1 = client.CoreV1Api(member)
            assert (await mv1.list_service_for_all_namespaces()).items == []
            with pytest.raises(ApiException) as exc:
                await mv1.create_namespaced_service("default", _svc("nope"))
            body = _status(exc.value)
            assert exc.value.status == 403
            assert (
                'User "system:serviceaccount:default:reader" cannot create resource "services"'
                in body["message"]
            )
            with pytest.raises(ApiException) as exc:
                await mv1.list_namespaced_secret("default")
            assert exc.value.status == 403


async def test_retry_after_and_resource_version_zero_list_ignores_limit() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        for i in range(5):
            api.add(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"c{i}", "namespace": "default"},
                }
            )
        from_cache = await v1.list_namespaced_config_map("default", limit=2, resource_version="0")
        assert len(from_cache.items) == 5 and not from_cache.metadata._continue
        api.fail(429, times=1, retry_after=7, verb="list")
        with pytest.raises(ApiException) as exc:
            await v1.list_namespaced_config_map("default")
        assert exc.value.status == 429 and exc.value.headers["Retry-After"] == "7"


async def test_fake_clusters_run_in_their_own_process(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n"
        "spec: {type: LoadBalancer, ports: [{port: 80}]}\n"
    )
    kubeconfig = tmp_path / "config"
    root = Path(__file__).resolve().parents[2]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.kube",
        "--cluster",
        "east",
        "--cluster",
        "west",
        "--kubeconfig",
        str(kubeconfig),
        "--seed",
        f"east={seed}",
        cwd=root,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert proc.stdout is not None
        lines = [await asyncio.wait_for(proc.stdout.readline(), 30) for _ in range(2)]
        assert [line.split()[0] for line in lines] == [b"east", b"west"]
        for ctx, expect in (("east", ["web"]), ("west", [])):
            c = await config.new_client_from_config(config_file=str(kubeconfig), context=ctx)
            async with c:
                got = await client.CoreV1Api(c).list_service_for_all_namespaces()
            assert [s.metadata.name for s in got.items] == expect
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_writes_must_fit_the_schema_of_their_type() -> None:
    async with Admin() as api, api.api_client() as c:
        v1, rbac = client.CoreV1Api(c), client.RbacAuthorizationV1Api(c)
        bad_port = {"metadata": {"name": "web"}, "spec": {"ports": [{"port": "eighty"}]}}
        with pytest.raises(ApiException) as exc:
            await v1.create_namespaced_service("default", bad_port)
        assert exc.value.status == 400 and "spec.ports[0].port" in _status(exc.value)["message"]
        with pytest.raises(ApiException) as exc:  # roleRef is required
            await rbac.create_cluster_role_binding({"metadata": {"name": "b"}, "subjects": []})
        assert exc.value.status == 422 and _status(exc.value)["reason"] == "Invalid"
        await v1.create_namespaced_service("default", _svc("web"))
        with pytest.raises(ApiException) as exc:
            await v1.patch_namespaced_service("web", "default", {"spec": {"ports": [{"port": "x"}]}})
        assert exc.value.status == 400
        # Tests may still plant malformed objects directly.
        api.add(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "odd", "namespace": "default"},
                "spec": {"ports": [{"port": "x"}]},
            }
        )
        assert api.get("services", "odd", "default") is not None


async def test_custom_resources_must_fit_their_crd_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["region"],
                "properties": {
                    "region": {"type": "string"},
                    "weight": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "port": {"x-kubernetes-int-or-string": True},
                    "note": {"type": "string", "nullable": True},
                },
            }
        },
    }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.io"},
        "spec": {
            "group": "example.io",
            "scope": "Namespaced",
            "names": {"plural": "things", "kind": "Thing"},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
            ],
        },
    }
    async with Admin() as api, api.api_client() as c:
        await client.ApiextensionsV1Api(c).create_custom_resource_definition(crd)
        custom = client.CustomObjectsApi(c)

        async def create(name: str, spec: dict[str, Any]) -> dict[str, Any]:
            body = {"apiVersion": "example.io/v1", "kind": "Thing", "metadata": {"name": name}, "spec": spec}
            return await custom.create_namespaced_custom_object("example.io", "v1", "default", "things", body)

        await create("ok", {"region": "us-east1", "weight": 5, "port": "http", "note": None})
        await create("ok2", {"region": "us-east1", "port": 8080})
        for name, spec, code in (
            ("no-region", {}, 422),
            ("heavy", {"region": "r", "weight": 5000}, 422),
            ("typed", {"region": 7}, 400),
        ):
            with pytest.raises(ApiException) as exc:
                await create(name, spec)
            assert exc.value.status == code, name
        assert [o["metadata"]["name"] for o in api.objects("things")] == ["ok", "ok2"]


async def test_open_watches_counts_live_streams_only() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        w = watch.Watch()
        stream = w.stream(v1.list_namespaced_service, "default", timeout_seconds=30)
        await v1.create_namespaced_service("default", _svc("a"))
        await _events(stream, 1)
        assert api.open_watches == 1
        await w.close()
        for _ in range(200):  # the server notices the closed connection within its poll interval
            if api.open_watches == 0:
                break
            await asyncio.sleep(0.01)
        assert api.open_watches == 0


async def test_hostile_objects_can_be_planted_and_listed() -> None:
    async with Admin() as api, api.api_client() as c:
        hostile = [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "s1", "namespace": "default"},
                "spec": "x",
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "s2", "namespace": "default", "labels": ["not", "a", "map"]},
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "x" * 300,
                    "namespace": "default",
                    "annotations": {f"a{i}": "v" * 100 for i in range(10_000)},
                },
            },
        ]
        for obj in hostile:
            api.add(obj)
        listed = await client.CoreV1Api(c).list_namespaced_service("default", _preload_content=False)
        names = [i["metadata"]["name"] for i in json.loads(await listed.read())["items"]]
        assert names == ["s1", "s2", "x" * 300]
        selected = await client.CoreV1Api(c).list_namespaced_service("default", label_selector="app=web")
        assert selected.items == []


async def test_unknown_fields_are_dropped_with_a_warning_or_refused_when_strict() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        body = {"metadata": {"name": "cm", "labels": {"a": "b"}}, "data": {"k": "v"}, "dta": {"typo": "x"}}
        _obj, status, headers = await v1.create_namespaced_config_map_with_http_info("default", body)
        assert status == 201 and headers["Warning"] == r'299 - "unknown field \"dta\""'
        stored = api.get("configmaps", "cm", "default")
        assert stored is not None and "dta" not in stored and stored["data"] == {"k": "v"}
        with pytest.raises(ApiException) as exc:
            await v1.create_namespaced_config_map(
                "default", {**body, "metadata": {"name": "cm2"}}, field_validation="Strict"
            )
        assert exc.value.status == 400 and 'unknown field "dta"' in _status(exc.value)["message"]
        await v1.patch_namespaced_config_map("cm", "default", {"metadata": {"labelz": {"x": "y"}}})
        assert "labelz" not in api.get("configmaps", "cm", "default")["metadata"]


async def test_strategic_merge_patch_merges_lists_by_their_merge_key() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        svc = _svc("web")
        svc.metadata.finalizers = ["example.com/a"]
        await v1.create_namespaced_service("default", svc)
        # kubernetes-asyncio sends dict patches of built-ins as strategic merge patches.
        patched = await v1.patch_namespaced_service(
            "web",
            "default",
            {
                "metadata": {"finalizers": ["example.com/b"]},
                "spec": {"ports": [{"port": 443, "name": "https"}, {"port": 80, "name": "http"}]},
            },
        )
        assert patched.metadata.finalizers == ["example.com/a", "example.com/b"]
        assert [(p.port, p.name) for p in patched.spec.ports] == [(80, "http"), (443, "https")]
        patched = await v1.patch_namespaced_service(
            "web", "default", {"spec": {"ports": [{"port": 80, "$patch": "delete"}]}}
        )
        assert [p.port for p in patched.spec.ports] == [443]
        # A JSON merge patch replaces lists wholesale.
        patched = await v1.patch_namespaced_service(
            "web",
            "default",
            {"spec": {"ports": [{"port": 8080}]}},
            _content_type="application/merge-patch+json",
        )
        assert [p.port for p in patched.spec.ports] == [8080]


async def test_custom_resources_refuse_strategic_merge_and_keep_preserved_fields() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.io"},
        "spec": {
            "group": "example.io",
            "scope": "Cluster",
            "names": {"plural": "things", "kind": "Thing"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "known": {"type": "string"},
                                        "free": {
                                            "type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True,
                                        },
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    async with Admin() as api, api.api_client() as c:
        await client.ApiextensionsV1Api(c).create_custom_resource_definition(crd)
        custom = client.CustomObjectsApi(c)
        body = {
            "apiVersion": "example.io/v1",
            "kind": "Thing",
            "metadata": {"name": "t"},
            "spec": {"known": "k", "unknown": 1, "free": {"any": {"thing": True}}},
        }
        made = await custom.create_cluster_custom_object("example.io", "v1", "things", body)
        assert made["spec"] == {"known": "k", "free": {"any": {"thing": True}}}
        with pytest.raises(ApiException) as exc:
            await custom.patch_cluster_custom_object(
                "example.io",
                "v1",
                "things",
                "t",
                {"spec": {"known": "x"}},
                _content_type="application/strategic-merge-patch+json",
            )
        assert exc.value.status == 415


async def test_finalizers_hold_deletion_until_removed() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="held", finalizers=["example.com/cleanup"]))
        await v1.create_namespaced_config_map("default", cm)
        rv = (await v1.list_namespaced_config_map("default")).metadata.resource_version
        await v1.delete_namespaced_config_map("held", "default")
        pending = await v1.read_namespaced_config_map("held", "default")
        assert pending.metadata.deletion_timestamp is not None
        with pytest.raises(ApiException) as exc:
            await v1.patch_namespaced_config_map(
                "held", "default", {"metadata": {"finalizers": ["example.com/cleanup", "example.com/more"]}}
            )
        assert exc.value.status == 422
        await v1.patch_namespaced_config_map(
            "held",
            "default",
            {"metadata": {"finalizers": None}},
            _content_type="application/merge-patch+json",
        )
        with pytest.raises(ApiException) as exc:
            await v1.read_namespaced_config_map("held", "default")
        assert exc.value.status == 404
        w = watch.Watch()
        events = await _events(
            w.stream(v1.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5), 3
        )
        await w.close()
        assert [e["type"] for e in events] == ["MODIFIED", "MODIFIED", "DELETED"]


async def test_label_and_annotation_rules() -> None:
    async with Admin() as api, api.api_client() as c:
        v1 = client.CoreV1Api(c)
        for meta in (
            {"name": "a", "labels": {"bad key!": "x"}},
            {"name": "b", "labels": {"app": "has space"}},
            {"name": "c", "labels": {"app": "x" * 64}},
            {"name": "d", "annotations": {"big": "x" * (256 * 1024)}},
            {"name": "e", "annotations": {"UPPER.example.com/x": "y"}},
        ):
            with pytest.raises(ApiException) as exc:
                await v1.create_namespaced_config_map("default", {"metadata": meta})
            assert exc.value.status == 422, meta
        ok = {
            "name": "ok",
            "labels": {"example.com/app": "web-1"},
            "annotations": {"note": "any text at all"},
        }
        await v1.create_namespaced_config_map("default", {"metadata": ok})


async def test_request_bodies_over_3_mib_are_refused() -> None:
    async with Admin() as api, api.api_client() as c:
        huge = {"metadata": {"name": "huge"}, "data": {"k": "x" * (3 * 1024 * 1024)}}
        with pytest.raises(ApiException) as exc:
            await client.CoreV1Api(c).create_namespaced_config_map("default", huge)
        assert exc.value.status == 413 and _status(exc.value)["reason"] == "RequestEntityTooLarge"
