{{/* Names */}}
{{- define "ingressfed.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ingressfed.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Component name: fullname-component, kept within 63 characters. */}}
{{- define "ingressfed.component" -}}
{{- printf "%s-%s" (include "ingressfed.fullname" .root | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "ingressfed.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "ingressfed.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ingressfed
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "root" $ "component" "proxy"). */}}
{{- define "ingressfed.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ingressfed.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ingressfed.componentLabels" -}}
{{ include "ingressfed.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ingressfed.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "ingressfed.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ingressfed.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ingressfed.configMapName" -}}
{{- printf "%s-config" (include "ingressfed.fullname" .) -}}
{{- end -}}

{{- define "ingressfed.credentialsSecretName" -}}
{{- if .Values.credentials.existingSecret -}}
{{- .Values.credentials.existingSecret -}}
{{- else if .Values.credentials.create -}}
{{- printf "%s-credentials" (include "ingressfed.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "ingressfed.feedSecretName" -}}
{{- if eq .Values.role "edge" -}}
{{- required "edge.secret: name the Secret holding the feed token (key token) of this edge" .Values.edge.secret -}}
{{- else -}}
{{- default (printf "%s-feed-token" (include "ingressfed.fullname" .)) .Values.feed.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "ingressfed.geoipLicenseSecretName" -}}
{{- default (printf "%s-geoip-license" (include "ingressfed.fullname" .)) .Values.geoip.geoipupdate.existingSecret -}}
{{- end -}}

{{/* In-cluster base URL of the controller; followers poll <base>/v1/feed. */}}
{{- define "ingressfed.feedURL" -}}
{{- if eq .Values.role "edge" -}}
{{- required "edge.feedUrl: the host controller's URL as this member reaches it, e.g. https://ingressfed.example.net:9090" .Values.edge.feedUrl -}}
{{- else -}}
{{- printf "%s://%s.%s.svc:%d" (ternary "https" "http" (eq (include "ingressfed.controllerTls" .) "true")) (include "ingressfed.component" (dict "root" . "component" "controller")) .Release.Namespace (int .Values.controller.port) -}}
{{- end -}}
{{- end -}}

{{/* Paths inside the containers. */}}
{{- define "ingressfed.configPath" -}}/etc/ingressfed/config/config.yaml{{- end -}}
{{- define "ingressfed.feedTokenPath" -}}/etc/ingressfed/feed/token{{- end -}}
{{- define "ingressfed.credentialsDir" -}}/etc/ingressfed/credentials{{- end -}}
{{- define "ingressfed.geoipDir" -}}/var/lib/geoip{{- end -}}
{{- define "ingressfed.stateDir" -}}/var/lib/ingressfed{{- end -}}

{{/*
The federation config file (CONFIG.md shape). One file for every process: `ingressfed run` (controller)
keeps its in-process proxy and DNS server off because they run as their own Deployments, which read
their sections (proxy.*, dnsServer.*, geo.*) from the same file.
*/}}
{{- define "ingressfed.config" -}}
{{- $geoDB := "" -}}
{{- if ne .Values.geoip.source "none" -}}
{{- $geoDB = printf "%s/%s" (include "ingressfed.geoipDir" .) .Values.geoip.fileName -}}
{{- end -}}
{{- $dns := deepCopy .Values.dns -}}
{{- if and (eq $dns.provider "rfc2136") (include "ingressfed.credentialsSecretName" .) (not (hasKey $dns.options "tsigSecret")) (not (hasKey $dns.options "tsigSecretFile")) -}}
{{- $_ := set $dns.options "tsigSecretFile" (printf "%s/tsig-secret" (include "ingressfed.credentialsDir" .)) -}}
{{- end -}}
{{- $config := dict
  "federation" .Values.federation
  "dns" $dns
  "clusters" .Values.clusters
  "source" (dict
    "kind" .Values.source.kind
    "file" .Values.source.file
    "namespaces" .Values.source.namespaces
    "hostKubeconfig" (dict "path" nil "context" nil "inCluster" (eq .Values.source.kind "kubernetes")))
  "health" .Values.health
  "geo" (dict
    "database" (ternary $geoDB nil (ne $geoDB ""))
    "trustedProxies" .Values.geo.trustedProxies
    "defaultOrder" .Values.geo.defaultOrder)
  "proxy" (dict
    "enabled" false
    "listen" (printf "0.0.0.0:%d" (int .Values.proxy.port))
    "adminListen" (printf "0.0.0.0:%d" (int .Values.proxy.adminPort))
    "clusterHeader" .Values.proxy.clusterHeader
    "healthCheck" .Values.proxy.healthCheck
    "timeouts" .Values.proxy.timeouts
    "limits" .Values.proxy.limits
    "tls" (ternary (include "ingressfed.proxyTls" . | fromYaml) nil (and .Values.proxy.enabled .Values.proxy.tls.enabled)))
  "dnsServer" (dict
    "enabled" false
    "listen" (printf "0.0.0.0:%d" (int .Values.dnsServer.port))
    "answers" .Values.dnsServer.answers)
  "controller" (dict
    "listen" (printf "0.0.0.0:%d" (int .Values.controller.port))
    "debounce" .Values.controller.debounce
    "resync" .Values.controller.resync
    "feedTokenFile" (include "ingressfed.feedTokenPath" .)
    "tls" (ternary (dict "certFile" "/etc/ingressfed/controller-tls/tls.crt" "keyFile" "/etc/ingressfed/controller-tls/tls.key") nil (eq (include "ingressfed.controllerTls" .) "true")))
  "tls" (dict "acme" (ternary (include "ingressfed.acmeConfig" . | fromYaml) nil (eq (include "ingressfed.acmeOn" .) "true")))
  "status" (dict "enabled" .Values.controller.status.enabled)
  "edges" (ternary .Values.edges (list) (eq .Values.role "host"))
  "edgeHealth" .Values.edgeHealth
  "leaderElection" (dict
    "enabled" .Values.leaderElection.enabled
    "namespace" .Release.Namespace
    "leaseName" .Values.leaderElection.leaseName
    "leaseDuration" .Values.leaderElection.leaseDuration
    "renewDeadline" .Values.leaderElection.renewDeadline
    "retryPeriod" .Values.leaderElection.retryPeriod)
-}}
{{- toYaml $config -}}
{{- end -}}

{{/* Restricted container security context shared by every container. */}}
{{- define "ingressfed.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "ingressfed.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Soft spread over nodes: call with (dict "root" $ "component" "proxy" "enabled" bool). */}}
{{- define "ingressfed.topologySpread" -}}
{{- if .enabled }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "ingressfed.selectorLabels" (dict "root" .root "component" .component) | nindent 8 }}
{{- end }}
{{- end -}}

{{/* GeoIP volumes for the proxy and DNS server pods. */}}
{{- define "ingressfed.geoipVolume" -}}
{{- $g := .Values.geoip -}}
{{- if eq $g.source "secret" }}
- name: geoip
  secret:
    secretName: {{ required "geoip.secret.name is required when geoip.source=secret" $g.secret.name }}
    items:
      - key: {{ $g.secret.key }}
        path: {{ $g.fileName }}
{{- else if eq $g.source "volume" }}
{{- if not $g.volume }}{{ fail "geoip.volume is required when geoip.source=volume (a volume source, e.g. {persistentVolumeClaim: {claimName: geoip}})" }}{{ end }}
- name: geoip
  {{- toYaml $g.volume | nindent 2 }}
{{- else if eq $g.source "geoipupdate" }}
- name: geoip
  emptyDir: {}
- name: geoip-license
  secret:
    secretName: {{ include "ingressfed.geoipLicenseSecretName" . }}
{{- end }}
{{- end -}}

{{- define "ingressfed.geoipMount" -}}
{{- if ne .Values.geoip.source "none" }}
- name: geoip
  mountPath: {{ include "ingressfed.geoipDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* geoipupdate container: call with (dict "root" $ "sidecar" bool). */}}
{{- define "ingressfed.geoipupdateContainer" -}}
{{- $g := .root.Values.geoip.geoipupdate -}}
- name: {{ ternary "geoipupdate" "geoipupdate-init" .sidecar }}
  image: {{ printf "%s:%s" $g.image.repository $g.image.tag }}
  imagePullPolicy: {{ $g.image.pullPolicy }}
  env:
    - name: GEOIPUPDATE_ACCOUNT_ID
      value: {{ required "geoip.geoipupdate.accountId is required when geoip.source=geoipupdate" $g.accountId | quote }}
    - name: GEOIPUPDATE_LICENSE_KEY_FILE
      value: /etc/geoipupdate/license-key
    - name: GEOIPUPDATE_EDITION_IDS
      value: {{ $g.editionIds | quote }}
    - name: GEOIPUPDATE_DB_DIR
      value: {{ include "ingressfed.geoipDir" .root }}
    {{- if .sidecar }}
    - name: GEOIPUPDATE_FREQUENCY
      value: {{ $g.frequencyHours | quote }}
    {{- end }}
  securityContext:
    {{- include "ingressfed.containerSecurityContext" .root | nindent 4 }}
  resources:
    {{- toYaml $g.resources | nindent 4 }}
  {{- if .sidecar }}
  livenessProbe:
    exec:
      command: ["/bin/sh", "-c", "test -s {{ include "ingressfed.geoipDir" .root }}/{{ .root.Values.geoip.fileName }}"]
    periodSeconds: 300
    failureThreshold: 3
  readinessProbe:
    exec:
      command: ["/bin/sh", "-c", "test -s {{ include "ingressfed.geoipDir" .root }}/{{ .root.Values.geoip.fileName }}"]
    periodSeconds: 60
  {{- end }}
  volumeMounts:
    - name: geoip
      mountPath: {{ include "ingressfed.geoipDir" .root }}
    - name: geoip-license
      mountPath: /etc/geoipupdate
      readOnly: true
    - name: tmp
      mountPath: /tmp
{{- end -}}


{{/* The proxy.tls config section (null when HTTPS is off); certificates mounted under /etc/ingressfed/certs. */}}
{{- define "ingressfed.proxyTls" -}}
{{- $t := .Values.proxy.tls -}}
{{- if and .Values.proxy.enabled $t.enabled -}}
listen: {{ printf "0.0.0.0:%d" (int $t.port) | quote }}
certificateDir: {{ ternary "/etc/ingressfed/certs" nil (gt (len $t.secrets) 0) }}
defaultCertificate: {{ ternary $t.defaultCertificate nil (ne $t.defaultCertificate "") }}
redirectHttp: {{ $t.redirectHttp }}
redirectPort: {{ $t.servicePort }}
hsts: {maxAge: {{ $t.hstsMaxAge }}}
{{- end -}}
{{- end -}}


{{/* "true" when the controller listener serves HTTPS (host role only: an edge has no controller). */}}
{{- define "ingressfed.controllerTls" -}}
{{- and (eq .Values.role "host") .Values.controller.tls.enabled -}}
{{- end -}}

{{/* "true" when the host controller orders ACME certificates. */}}
{{- define "ingressfed.acmeOn" -}}
{{- and (eq .Values.role "host") .Values.acme.enabled -}}
{{- end -}}

{{- define "ingressfed.acmeMount" -}}/var/lib/ingressfed-acme{{- end -}}

{{/* The tls.acme config section. stateDir is a directory below the volume's root: the process owns
it (mode 0700), which a volume root owned by root with fsGroup would not allow. */}}
{{- define "ingressfed.acmeConfig" -}}
{{- $a := .Values.acme -}}
{{- if eq (include "ingressfed.acmeOn" .) "true" -}}
directoryUrl: {{ required "acme.directoryUrl: the CA's ACME directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory" $a.directoryUrl | quote }}
email: {{ ternary ($a.email | quote) "null" (ne $a.email "") }}
challenge: {{ $a.challenge }}
hosts: {{ toJson $a.hosts }}
stateDir: {{ printf "%s/state" (include "ingressfed.acmeMount" .) }}
renewBeforeDays: {{ $a.renewBeforeDays }}
checkInterval: {{ $a.checkInterval }}
propagationTimeout: {{ $a.propagationTimeout }}
propagationNameservers: {{ toJson $a.propagationNameservers }}
{{- if $a.eab.kid }}
eab:
  kid: {{ $a.eab.kid | quote }}
  hmacKeyFile: {{ printf "/etc/ingressfed/acme-eab/%s" $a.eab.key }}
{{- end }}
{{- end -}}
{{- end -}}
