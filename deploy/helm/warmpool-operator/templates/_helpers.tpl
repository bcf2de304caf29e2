{{/* The name of every object; "warmpool-operator" like deploy/kustomize/base. */}}
{{- define "warmpool.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "warmpool.selectorLabels" -}}
app.kubernetes.io/name: {{ include "warmpool.name" . }}
{{- end -}}

{{- define "warmpool.labels" -}}
{{ include "warmpool.selectorLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "warmpool.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The operator's ServiceAccount as an RBAC subject. */}}
{{- define "warmpool.subject" -}}
- kind: ServiceAccount
  name: {{ include "warmpool.name" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{/* The operator's user name, as the API server sees its ServiceAccount token. */}}
{{- define "warmpool.username" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "warmpool.name" . }}
{{- end -}}

{{/* rbac.targets grouped as JSON {namespace: [names...]}; fails on an empty list or a target without a name. */}}
{{- define "warmpool.targetsByNamespace" -}}
{{- $byNamespace := dict -}}
{{- range $i, $target := required "rbac.targets must list the DaemonSets policies may target" .Values.rbac.targets -}}
{{- $namespace := required (printf "rbac.targets[%d].namespace is required" $i) $target.namespace -}}
{{- $name := required (printf "rbac.targets[%d].name is required" $i) $target.name -}}
{{- $names := get $byNamespace $namespace | default list -}}
{{- $_ := set $byNamespace $namespace (append $names $name | uniq) -}}
{{- end -}}
{{- toJson $byNamespace -}}
{{- end -}}
