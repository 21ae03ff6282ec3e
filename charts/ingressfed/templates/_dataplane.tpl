{{/*
Pod spec parts shared by the two feed followers (proxy and DNS server): no API token, the config,
the feed token, GeoIP and writable state on emptyDir. Call with (dict "root" $ "component" "proxy" "values" .Values.proxy).
*/}}
{{- define "ingressfed.dataplanePodSpec" -}}
{{- $root := .root -}}
serviceAccountName: {{ include "ingressfed.component" (dict "root" $root "component" "dataplane") }}
automountServiceAccountToken: false
securityContext:
  {{- include "ingressfed.podSecurityContext" $root | nindent 2 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- include "ingressfed.topologySpread" (dict "root" $root "component" .component "enabled" .values.topologySpread) }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if eq $root.Values.geoip.source "geoipupdate" }}
initContainers:
  {{- include "ingressfed.geoipupdateContainer" (dict "root" $root "sidecar" false) | nindent 2 }}
{{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "ingressfed.configMapName" $root }}
  - name: feed-token
    secret:
      secretName: {{ include "ingressfed.feedSecretName" $root }}
      items:
        - {key: token, path: token}
        {{- if and (eq $root.Values.role "edge") $root.Values.edge.ca }}
        - {key: ca.crt, path: ca.crt}
        {{- end }}
  - name: state
    emptyDir: {}
  - name: tmp
    emptyDir: {medium: Memory, sizeLimit: 64Mi}
  {{- if and (eq (include "ingressfed.controllerTls" $root) "true") $root.Values.controller.tls.caKey }}
  # Only the CA from the controller's TLS Secret: the private key is not projected into this pod.
  - name: controller-ca
    secret:
      secretName: {{ $root.Values.controller.tls.secret }}
      items: [{key: {{ $root.Values.controller.tls.caKey }}, path: ca.crt}]
  {{- end }}
  {{- with include "ingressfed.geoipVolume" $root | trim }}
  {{- . | nindent 2 }}
  {{- end }}
{{- end -}}

{{- define "ingressfed.dataplaneMounts" -}}
- name: config
  mountPath: /etc/ingressfed/config
  readOnly: true
- name: feed-token
  mountPath: /etc/ingressfed/feed
  readOnly: true
- name: state
  mountPath: {{ include "ingressfed.stateDir" . }}
- name: tmp
  mountPath: /tmp
{{- if and (eq (include "ingressfed.controllerTls" .) "true") .Values.controller.tls.caKey }}
- name: controller-ca
  mountPath: /etc/ingressfed/controller-ca
  readOnly: true
{{- end }}
{{- include "ingressfed.geoipMount" . }}
{{- end -}}

{{/* Arguments of a feed follower: call with (dict "root" $ "component" "proxy"). */}}
{{- define "ingressfed.followerArgs" -}}
- --config
- {{ include "ingressfed.configPath" .root }}
- --feed
- {{ include "ingressfed.feedURL" .root }}
- --token-file
- {{ include "ingressfed.feedTokenPath" .root }}
- --state-file
- {{ printf "%s/%s-feed.json" (include "ingressfed.stateDir" .root) .component }}
{{- $e := .root.Values.edge }}
{{- if and (eq .root.Values.role "edge") $e.ca }}
- --ca-file
- /etc/ingressfed/feed/ca.crt
{{- end }}
{{- if and (eq (include "ingressfed.controllerTls" .root) "true") .root.Values.controller.tls.caKey }}
- --ca-file
- /etc/ingressfed/controller-ca/ca.crt
{{- end }}
{{- if and (eq .root.Values.role "edge") (eq .component "proxy") }}
- --edge
- {{ required "edge.name: this edge's name, as declared in the host's edges list" $e.name }}
- --edge-cluster
- {{ required "edge.cluster: the member cluster this edge runs in" $e.cluster }}
- --report-interval
- {{ $e.reportInterval | quote }}
- --peer-check-interval
- {{ $e.peerCheckInterval | quote }}
- --peer-port
- {{ .root.Values.proxy.service.port | quote }}
{{- range $e.publicAddresses }}
- --public-address
- {{ . }}
{{- end }}
{{- end }}
{{- end -}}
