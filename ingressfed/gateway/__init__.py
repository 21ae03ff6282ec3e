"""Gateway API (gateway.networking.k8s.io/v1) as an input: a pure model.

Everything in this package is a purely computational function of frozen values: parsing the
API objects (:mod:`.parse`), hostname intersection (:mod:`.hostnames`), attaching routes to the
global Gateway and resolving their backends across member clusters (:mod:`.attach`,
:mod:`.backends`), merging copies of one object seen in several clusters (:mod:`.merge`), the
compiled request matcher (:mod:`.table`), what filters do to a request (:mod:`.filters`) and the
status conditions users read with ``kubectl describe`` (:mod:`.conditions`, :mod:`.state`).
"""
