{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "palaver.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated to 63 characters. A release name that
already contains the chart name is used as is.
*/}}
{{- define "palaver.fullname" -}}
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
Name of a per-role (or per-component) resource: <fullname>-<suffix>, the
full name shortened so the suffix always survives the 63-character limit.
Call with (dict "root" $ "suffix" "api").
*/}}
{{- define "palaver.componentName" -}}
{{- $suffix := .suffix }}
{{- $max := sub 62 (len $suffix) | int }}
{{- printf "%s-%s" (include "palaver.fullname" .root | trunc $max | trimSuffix "-") $suffix }}
{{- end }}

{{/*
Chart label value.
*/}}
{{- define "palaver.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "palaver.labels" -}}
helm.sh/chart: {{ include "palaver.chart" . }}
{{ include "palaver.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: palaver
{{- end }}

{{/*
Selector labels shared by every pod of the release.
*/}}
{{- define "palaver.selectorLabels" -}}
app.kubernetes.io/name: {{ include "palaver.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels and selector labels of one component (a role, or "migrate").
Call with (dict "root" $ "component" "api").
*/}}
{{- define "palaver.componentLabels" -}}
{{ include "palaver.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "palaver.componentSelectorLabels" -}}
{{ include "palaver.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The enabled roles, in a fixed order, as a comma-separated list. Also the
place where impossible combinations fail the render.
*/}}
{{- define "palaver.roles" -}}
{{- $roles := list }}
{{- range $role := list "api" "gateway" "web" "all" }}
{{- if (index $.Values.roles $role).enabled }}
{{- $roles = append $roles $role }}
{{- end }}
{{- end }}
{{- if and (has "all" $roles) (gt (len $roles) 1) }}
{{- fail "roles.all.enabled runs every role in one Deployment: disable roles.api, roles.gateway and roles.web" }}
{{- end }}
{{- if eq (len $roles) 0 }}
{{- fail "no role is enabled: enable roles.all, or some of roles.api, roles.gateway, roles.web" }}
{{- end }}
{{- join "," $roles }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "palaver.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "palaver.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
ServiceAccount of the api role (and of `all`): its own, so that only it gets
the files bucket through EKS Pod Identity.
*/}}
{{- define "palaver.apiServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "palaver.componentName" (dict "root" . "suffix" "api")) .Values.serviceAccount.apiName }}
{{- else }}
{{- include "palaver.serviceAccountName" . }}
{{- end }}
{{- end }}

{{/*
Container image reference: repository@digest when a digest is given, else repository:tag.
*/}}
{{- define "palaver.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding the database URL, failing when none is configured.
*/}}
{{- define "palaver.databaseSecretName" -}}
{{- if .Values.database.externalSecret.enabled }}
{{- include "palaver.componentName" (dict "root" . "suffix" "database") }}
{{- else if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else }}
{{- fail "set database.existingSecret (a Secret holding the PostgreSQL URL) or enable database.externalSecret" }}
{{- end }}
{{- end }}

{{/*
Environment variables every Palaver container gets: the database URL from
its Secret, and any extra Secret-backed variables.
*/}}
{{- define "palaver.secretEnv" -}}
- name: PALAVER_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "palaver.databaseSecretName" . }}
      key: {{ .Values.database.secretKey }}
{{- if .Values.bus.redis.enabled }}
- name: PALAVER_BUS
  valueFrom:
    secretKeyRef:
      name: {{ include "palaver.databaseSecretName" . }}
      key: PALAVER_BUS
{{- end }}
{{- range .Values.extraSecretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .key }}
{{- end }}
{{- end }}

{{/*
The writable /tmp of a read-only container.
*/}}
{{- define "palaver.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{/*
Seconds Kubernetes waits after the preStop hook starts before SIGKILL: the
preStop sleep, then the server's drain period, then a margin.
*/}}
{{- define "palaver.terminationGracePeriodSeconds" -}}
{{- add .Values.preStopSleepSeconds .Values.config.shutdownGraceSeconds .Values.terminationGraceMarginSeconds }}
{{- end }}
