{{/*
The chart's name: `nameOverride`, else the chart's.
*/}}
{{- define "sparkyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects, at most 63 characters (DNS label).
*/}}
{{- define "sparkyard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
`helm.sh/chart`: name and version.
*/}}
{{- define "sparkyard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "sparkyard.labels" -}}
helm.sh/chart: {{ include "sparkyard.chart" . }}
{{ include "sparkyard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sparkyard
{{- with .Values.additionalLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The labels that pick the Deployment's pods (immutable once installed: never add to them).
*/}}
{{- define "sparkyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sparkyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount's name.
*/}}
{{- define "sparkyard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sparkyard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
sparkyard's image: repository, then the digest or the tag (appVersion by default).
*/}}
{{- define "sparkyard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The tool image the controller gives job runners.
*/}}
{{- define "sparkyard.toolsImage" -}}
{{- printf "%s:%s" .Values.toolsImage.repository (default .Chart.AppVersion .Values.toolsImage.tag) }}
{{- end }}

{{/*
The Lease the replicas elect a leader with.
*/}}
{{- define "sparkyard.leaseName" -}}
{{- default (printf "%s-controller" (include "sparkyard.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
The Secret holding the store URL and the bootstrap key (the chart's own).
*/}}
{{- define "sparkyard.secretName" -}}
{{- include "sparkyard.fullname" . }}
{{- end }}

{{/*
Refuses values the binary cannot run with, with a message naming the fix. Included by
the Deployment, so every render checks them.
*/}}
{{- define "sparkyard.validate" -}}
{{- $url := .Values.store.url | default "" | trim }}
{{- if and (not .Values.store.existingSecret) (not $url) }}
{{- fail "store.url is empty: set a PostgreSQL URL (postgres://user:password@host:5432/db), a SQLite one with replicas: 1, or store.existingSecret" }}
{{- end }}
{{- if and (not .Values.store.existingSecret) $url }}
{{- if not (regexMatch "^(postgres|postgresql|sqlite)://" $url) }}
{{- fail (printf "store.url %q: the scheme must be postgres://, postgresql:// or sqlite://" $url) }}
{{- end }}
{{- if regexMatch "[?&]sslmode=(require|verify-ca|verify-full)" $url }}
{{- fail "store.url: sparkyard's store does not speak TLS to PostgreSQL yet; use sslmode=prefer or disable over a private network" }}
{{- end }}
{{- if and (hasPrefix "sqlite://" $url) (gt (int .Values.replicas) 1) }}
{{- fail (printf "store.url is SQLite, which only one process may write: it needs replicas: 1 (got %d). Use PostgreSQL for more replicas, or set replicas: 1 (and persistence.enabled: true)." (int .Values.replicas)) }}
{{- end }}
{{- end }}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicas) 1) }}
{{- fail (printf "leaderElection.enabled is false with replicas: %d: every replica would run the job-run controller on the same runs. Enable leader election or set replicas: 1." (int .Values.replicas)) }}
{{- end }}
{{- if and .Values.persistence.enabled (gt (int .Values.replicas) 1) (has "ReadWriteOnce" .Values.persistence.accessModes) }}
{{- fail (printf "persistence.enabled with ReadWriteOnce is one volume for one pod: it needs replicas: 1 (got %d)" (int .Values.replicas)) }}
{{- end }}
{{- if and (eq .Values.service.type "NodePort") .Values.service.nodePort }}
{{- $port := int .Values.service.nodePort }}
{{- if or (lt $port 30000) (gt $port 32767) }}
{{- fail (printf "service.nodePort %d is outside the default NodePort range 30000-32767" $port) }}
{{- end }}
{{- end }}
{{- if and .Values.auth.accessKeyId (not (regexMatch "^AKIA[A-Z0-9]{16}$" .Values.auth.accessKeyId)) }}
{{- fail "auth.accessKeyId must be AKIA followed by 16 upper-case letters or digits" }}
{{- end }}
{{- if and .Values.auth.accessKeyId (ne (len .Values.auth.secretAccessKey) 40) }}
{{- fail "auth.secretAccessKey must be 40 characters when auth.accessKeyId is set" }}
{{- end }}
{{- end }}

{{/*
sparkyard's configuration file (docs/configuration.md). Only keys `Config` in
crates/sparkyard/src/config.rs accepts: an unknown key stops the binary at start.
*/}}
{{- define "sparkyard.configToml" -}}
# Rendered by the sparkyard chart from its values; see docs/configuration.md.
listen = {{ printf "0.0.0.0:%d" (int .Values.apiPort) | quote }}
data-dir = "/var/lib/sparkyard"
region = {{ .Values.aws.region | quote }}
account-id = {{ .Values.aws.accountId | toString | quote }}

[emr]
extra-release-labels = [{{ range $i, $l := .Values.emr.extraReleaseLabels }}{{ if $i }}, {{ end }}{{ $l | quote }}{{ end }}]

[services]
cluster-name = {{ .Values.cluster.name | quote }}
{{- with .Values.cluster.kubernetesVersion }}
kubernetes-version = {{ . | toString | quote }}
{{- end }}
{{- with .Values.cluster.oidcIssuer }}
oidc-issuer = {{ . | quote }}
{{- end }}

[controller]
{{- with .Values.controller.master }}
master = {{ . | quote }}
{{- end }}
tool-image = {{ include "sparkyard.toolsImage" . | quote }}
spark-home = {{ .Values.controller.sparkHome | quote }}
native-submission = {{ .Values.controller.nativeSubmission }}
ttl-seconds-after-finished = {{ int .Values.controller.ttlSecondsAfterFinished }}
queue-timeout-seconds = {{ int .Values.controller.queueTimeoutSeconds }}
{{- with .Values.controller.defaultImage }}
default-image = {{ . | quote }}
{{- end }}
{{- with .Values.controller.releaseImages }}

[controller.release-images]
{{- range $label, $image := . }}
{{ $label | quote }} = {{ $image | quote }}
{{- end }}
{{- end }}

[logs]
enabled = {{ .Values.logs.enabled }}

[history]
{{- if .Values.logs.s3Bucket }}
enabled = true
start = "on-demand"
event-log-dir = {{ printf "s3://%s/%s" .Values.logs.s3Bucket (.Values.logs.eventLogPrefix | trimAll "/") | trimSuffix "/" | quote }}
{{- else }}
enabled = false
{{- end }}

[metrics]
listen = {{ printf "0.0.0.0:%d" (int .Values.metrics.port) | quote }}

[container-insights]
enabled = {{ .Values.logs.cloudWatch.enabled }}
interval = {{ .Values.logs.cloudWatch.interval | quote }}
application-logs = false
publish-to = "aws"

[console]
enabled = {{ .Values.console.enabled }}
listen = {{ printf "0.0.0.0:%d" (int .Values.console.port) | quote }}
{{- with .Values.extraConfig }}

{{ . }}
{{- end }}
{{- end }}

{{/*
The rules sparkyard holds where job runs go: the emr-containers Role's
(crates/controller/src/build/virtual_cluster.rs), plus minting service-account tokens.
*/}}
{{- define "sparkyard.jobRules" -}}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
- apiGroups: [""]
  resources: [serviceaccounts, services, configmaps, events, pods, pods/log, persistentvolumeclaims]
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
- apiGroups: [""]
  resources: [secrets]
  verbs: [create, patch, delete, watch]
- apiGroups: [apps]
  resources: [statefulsets, deployments]
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
- apiGroups: [""]
  resources: [serviceaccounts/token]
  verbs: [create]
{{- end }}
