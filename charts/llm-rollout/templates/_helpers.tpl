{{/* Names, labels and small computed values shared by every template. */}}

{{- define "llm-rollout.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llm-rollout.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "llm-rollout.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llm-rollout.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "llm-rollout.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "llm-rollout.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: llm-rollout
{{- end -}}

{{- define "llm-rollout.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "llm-rollout.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag or repository@digest, from an image map over the chart's image. */}}
{{- define "llm-rollout.imageRef" -}}
{{- $img := merge (dict) .image .root.Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{- define "llm-rollout.image" -}}
{{- include "llm-rollout.imageRef" (dict "image" (dict) "root" .) -}}
{{- end -}}

{{- define "llm-rollout.sidecarImage" -}}
{{- include "llm-rollout.imageRef" (dict "image" .Values.sidecar.image "root" .) -}}
{{- end -}}

{{/* Namespaces the operator watches in namespace scope. */}}
{{- define "llm-rollout.watchNamespaces" -}}
{{- if .Values.watchNamespaces -}}
{{- join "," .Values.watchNamespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{- define "llm-rollout.webhookName" -}}
{{- printf "%s-webhook" (include "llm-rollout.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llm-rollout.webhookConfigName" -}}
{{- printf "%s.llm-rollout.io" (include "llm-rollout.fullname" .) -}}
{{- end -}}

{{- define "llm-rollout.certSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "llm-rollout.fullname" .)) .Values.webhook.certSecretName -}}
{{- end -}}

{{- define "llm-rollout.controlServiceName" -}}
{{- printf "%s-control" (include "llm-rollout.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The metric names of files/metrics.yaml, as a dict. */}}
{{- define "llm-rollout.metrics" -}}
{{- .Files.Get "files/metrics.yaml" -}}
{{- end -}}

{{/* What the operator may do with LLMRollouts where it watches them. */}}
{{- define "llm-rollout.watchRules" -}}
- apiGroups: [llm-rollout.io]
  resources: [llmrollouts]
  verbs: [get, list, watch, patch, update]
- apiGroups: [llm-rollout.io]
  resources: [llmrollouts/status]
  verbs: [get, patch, update]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# The control channel checks a sidecar's pod (named by its TokenReview) against the selector,
# in a cache one list and watch of the namespace's pods keeps (rollout_operator/pods.py).
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create]
{{- end -}}
