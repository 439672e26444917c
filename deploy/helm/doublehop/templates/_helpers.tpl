{{/* The namespace of seat $n: <release>-seat-<n>. */}}
{{- define "doublehop.ns" -}}
{{- printf "%s-seat-%d" .root.Release.Name (int .n) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "doublehop.labels" -}}
app.kubernetes.io/name: doublehop
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
doublehop.org/seat: {{ .n | quote }}
{{- end -}}

{{- define "doublehop.image" -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag | quote }}
{{- end -}}

{{/* The lab's names as the seat's Services (labnet --resolve). */}}
{{- define "doublehop.resolve" -}}
dc.lab.local=dc,web.lab.local=web,sql.lab.local=sql
{{- end -}}

{{- define "doublehop.securityContext" -}}
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
  add: [NET_BIND_SERVICE]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Node port i (0 KDC, 1 web, 2 LDAP) of seat n. */}}
{{- define "doublehop.nodePort" -}}
{{- add .root.Values.expose.nodePortBase (mul 3 (sub (int .n) 1)) .i -}}
{{- end -}}
