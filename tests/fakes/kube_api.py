"""Fake Kubernetes API servers for tests: ``from tests.fakes.kube_api import FakeKubeAPI``.

The implementation lives in ``tests.fakes.kube`` (resources, selectors, store, rbac, server). Summary:

Start and reach it
    ``async with FakeKubeAPI(name="east") as api:`` listens on 127.0.0.1, a free port; ``api.url``.
    Strict by default, as a real cluster: bearer tokens required (anonymous reaches only /readyz,
    /livez, /healthz, /version; a bad token gets 401 everywhere), RBAC enforced, and a watch history
    of ``history_size=25`` events per resource type (older resumes and continue tokens get 410).
    ``identity`` says who kubeconfigs and clients authenticate as: ``"member"`` (default: the account,
    ClusterRole and binding ``ingressfed join`` creates, rules from ``join.cluster_role_rules()``),
    ``"host"`` (the chart's controller ServiceAccount with its ClusterRole and Role, rendered by helm,
    in ``host_namespace``, Lease ``lease_name``) or ``"admin"`` (no RBAC: setup, join itself, tests of
    the fake's own semantics). Every request RBAC refuses is kept in ``api.forbidden`` and ``close()``
    raises AssertionError listing them (code that swallows a 403 still fails its test);
    ``allow_forbidden=True`` where a test expects refusals. ``api.token_for(identity)``,
    ``api.add_token(token, identity)`` (one more token for the same account, e.g. one per replica).
    Other options: ``tls=True`` (self-signed, CA in ``api.ca_pem`` and in kubeconfigs),
    ``require_auth``/``enforce_rbac`` (opt-outs; say why), ``bookmark_interval`` (seconds),
    ``watch_timeout`` (server-side cap on watches), ``token`` (the admin token), ``schema_validation``
    (default on: API writes must fit the Kubernetes 1.30 OpenAPI schema, custom resources their CRD's).
    ``api.write_kubeconfig(path, context="east", token=None, identity=None, make_current=True)`` writes
    or merges a kubeconfig; several fakes can share one file. ``api.kubeconfig(...)`` returns the dict.
    ``async with api.api_client(token=None, identity=None) as c:`` gives a kubernetes-asyncio ApiClient.
    ``python -m tests.fakes.kube --cluster east --cluster west --kubeconfig PATH`` runs them in a process.

Store access (emits watch events like API writes; ``add`` skips name validation on purpose)
    ``api.add(obj)`` create-or-replace from apiVersion/kind (status included), ``api.get(resource, name,
    namespace)``, ``api.objects(resource, namespace=None)``, ``api.patch(resource, name, patch, namespace,
    subresource=None)``, ``api.delete(resource, name, namespace)``, ``api.resource_version``.
    ``resource`` is a plural, ``plural.group``, kind or short name.

Faults (Python methods, matched on method/verb/resource/namespace/name/path regex/user/token)
    ``api.fail(status, times=None, retry_after=None, message=None, **match)`` answers with a Status;
    ``api.delay(seconds, **match)``; ``api.hang(**match)``; each returns a ``Fault`` (``.hits``,
    ``.remove()``); ``api.clear_faults()``.
    ``api.compact(expire_watches=False)`` forgets history: old resourceVersions and continue tokens get
    410 (open watches too with ``expire_watches``). ``api.drop_watches(at_next_event=False)`` cuts watch
    streams mid-line. ``api.bookmark_now()``. ``await api.stop()`` / ``await api.start()`` make the
    server unreachable and bring it back on the same port. ``api.ready = False`` fails ``/readyz``.
    ``api.count(verb=, resource=, method=, path=, user=, namespace=)`` counts requests;
    ``api.requests`` holds them; ``api.open_watches`` counts live watch streams.

Behaviour follows the real server where kubernetes-asyncio can tell: Status errors (404 NotFound, 409
AlreadyExists/Conflict, 410 Expired, 422 Invalid, 400 BadRequest), a global resourceVersion, uid,
creationTimestamp, generation, status subresources, limit/continue over a consistent snapshot,
resourceVersion=0 lists ignoring limit, watches with replay, bookmarks and ERROR 410, label and field
selectors, CRDs serving custom resources, TokenRequest and legacy token Secrets, namespace cascade,
writes checked against the 1.30 OpenAPI schemas (or the CRD's), unknown fields dropped with a Warning
header (fieldValidation=Strict refuses them), strategic merge patches that merge lists by merge key.
Simplified: deletion is immediate (finalizers and graceful deletion are ignored), no admission
webhooks, no server-side apply, no defaulting beyond Services and Namespaces.
"""

from tests.fakes.kube import ApiError, FakeKubeAPI, Fault, RequestRecord, status_body

__all__ = ["ApiError", "FakeKubeAPI", "Fault", "RequestRecord", "status_body"]
