{{/* Names and labels, as `helm create` makes them. */}}
{{- define "realm.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "realm.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "realm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "realm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "realm.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "realm.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "realm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "realm.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "realm.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{/* The Secret with api-key and metrics-key: the user's, or the chart's when it has a key. */}}
{{- define "realm.secretName" -}}
{{- if .Values.auth.existingSecret -}}
{{- .Values.auth.existingSecret -}}
{{- else if or .Values.auth.apiKey .Values.auth.metricsKey -}}
{{- include "realm.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "realm.checkModel" -}}
{{- if and (not .Values.model.existingClaim) (not .Values.model.url) -}}
{{- fail "model: set model.existingClaim (a PVC holding model.file) or model.url (downloaded by an init container)" -}}
{{- end -}}
{{- if not (regexMatch "^[0-9a-f]{64}$" .Values.model.sha256) -}}
{{- fail "model.sha256 must be 64 lowercase hex digits" -}}
{{- end -}}
{{- end -}}
