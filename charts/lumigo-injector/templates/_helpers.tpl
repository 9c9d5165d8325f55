{{/* Names ---------------------------------------------------------------------------- */}}

{{- define "lumigo-injector.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: <release>-<chart>, or the release name when it already holds the chart name. */}}
{{- define "lumigo-injector.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "lumigo-injector.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels ---------------------------------------------------------------------------- */}}

{{- define "lumigo-injector.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lumigo-injector.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "lumigo-injector.labels" -}}
helm.sh/chart: {{ include "lumigo-injector.chart" . }}
{{ include "lumigo-injector.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: lumigo
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Objects referred to from several templates ---------------------------------------- */}}

{{- define "lumigo-injector.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lumigo-injector.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret the serving certificate is mounted from. */}}
{{- define "lumigo-injector.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{- required "tls.secret.name is required when tls.mode is secret" .Values.tls.secret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "lumigo-injector.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the Lumigo token, or "" when the chart has none. */}}
{{- define "lumigo-injector.tokenSecretName" -}}
{{- if .Values.lumigo.existingSecret -}}
{{- .Values.lumigo.existingSecret -}}
{{- else if .Values.lumigo.token -}}
{{- printf "%s-token" (include "lumigo-injector.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "lumigo-injector.tokenSecretKey" -}}
{{- if .Values.lumigo.existingSecret -}}
{{- .Values.lumigo.existingSecretKey -}}
{{- else -}}
token
{{- end -}}
{{- end -}}

{{- define "lumigo-injector.serviceName" -}}
{{- include "lumigo-injector.fullname" . -}}
{{- end -}}

{{- define "lumigo-injector.certificateName" -}}
{{- printf "%s-serving" (include "lumigo-injector.fullname" .) -}}
{{- end -}}

{{/* image reference: repository:tag[@digest]; a floating `latest` tag is refused. */}}
{{- define "lumigo-injector.imageRef" -}}
{{- if eq (lower .tag) "latest" -}}
{{- fail (printf "image tag of %s must be pinned to a version, not \"latest\"" .repository) -}}
{{- end -}}
{{- if .digest -}}
{{- printf "%s:%s@%s" .repository .tag .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}
{{- end -}}

{{/* Settings shared by both webhook entries. */}}
{{- define "lumigo-injector.webhookCommon" -}}
{{- $root := .ctx -}}
admissionReviewVersions: ["v1"]
# The injector posts Events and copies the token Secret, never for a dry run.
sideEffects: NoneOnDryRun
# Fail open: when the injector is down or slow, pods start uninjected instead of failing.
failurePolicy: Ignore
timeoutSeconds: {{ $root.Values.webhook.timeoutSeconds }}
# Called again when a later webhook adds containers, so they get the env too.
reinvocationPolicy: IfNeeded
matchPolicy: Equivalent
clientConfig:
  service:
    name: {{ include "lumigo-injector.serviceName" $root }}
    namespace: {{ $root.Release.Namespace }}
    path: /mutate-pods
    port: {{ $root.Values.service.port }}
  {{- if .caBundle }}
  caBundle: {{ .caBundle }}
  {{- end }}
rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE"]
    resources: ["pods"]
    scope: Namespaced
{{- end -}}
