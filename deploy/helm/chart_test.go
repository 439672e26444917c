// Package helm holds the offline proof of the Kubernetes chart in
// ./doublehop: rendered with Helm's own library, linted, every object decoded
// strictly into the k8s.io/api types, and the chart's invariants checked. No
// cluster is reachable here; what runs on one is the same image the swarm
// workshop and the container lab run (README, "Kubernetes").
package helm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/provision"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "doublehop"

// objects is a rendered chart, decoded.
type objects struct {
	namespaces  []corev1.Namespace
	deployments []appsv1.Deployment
	services    []corev1.Service
	jobs        []batchv1.Job
	configMaps  []corev1.ConfigMap
	secrets     []corev1.Secret
	policies    []networkingv1.NetworkPolicy
	ingresses   []networkingv1.Ingress
	pvcs        []corev1.PersistentVolumeClaim
	other       int // ServiceAccount, Role, RoleBinding
	byNS        map[string][]string
}

// render renders the chart with Helm's engine, as `helm template` does.
func render(t *testing.T, vals map[string]any) (*objects, string) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	rv, err := util.ToRenderValuesWithSchemaValidation(ch, vals, common.ReleaseOptions{Name: "lab", Namespace: "default", IsInstall: true}, common.DefaultCapabilities.Copy(), false)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatal(err)
	}
	o := &objects{byNS: map[string][]string{}}
	var notes string
	for name, text := range out {
		if strings.HasSuffix(name, "NOTES.txt") {
			notes = text
			continue
		}
		if path.Ext(name) != ".yaml" {
			continue
		}
		for _, doc := range strings.Split(text, "\n---") {
			if strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(doc), "---")) == "" {
				continue
			}
			o.decode(t, name, doc)
		}
	}
	return o, notes
}

// add decodes js strictly into a T (a field the type does not have is an
// error, not ignored) and appends it.
func add[T any](t *testing.T, name string, js []byte, to *[]T) {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	*to = append(*to, v)
}

// decode turns one YAML document into its typed object, refusing any field
// the type does not have (a typo in the chart is an error, not ignored).
func (o *objects) decode(t *testing.T, file, doc string) {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatalf("%s: %v\n%s", file, err, doc)
	}
	var head struct {
		APIVersion, Kind string
		Metadata         struct{ Name, Namespace string }
	}
	if err := json.Unmarshal(js, &head); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("%s: %s %s/%s", file, head.Kind, head.Metadata.Namespace, head.Metadata.Name)
	switch key := head.APIVersion + " " + head.Kind; key {
	case "v1 Namespace":
		add(t, name, js, &o.namespaces)
	case "apps/v1 Deployment":
		add(t, name, js, &o.deployments)
	case "v1 Service":
		add(t, name, js, &o.services)
	case "batch/v1 Job":
		add(t, name, js, &o.jobs)
	case "v1 ConfigMap":
		add(t, name, js, &o.configMaps)
	case "v1 Secret":
		add(t, name, js, &o.secrets)
	case "networking.k8s.io/v1 NetworkPolicy":
		add(t, name, js, &o.policies)
	case "networking.k8s.io/v1 Ingress":
		add(t, name, js, &o.ingresses)
	case "v1 PersistentVolumeClaim":
		add(t, name, js, &o.pvcs)
	case "v1 ServiceAccount":
		add(t, name, js, new([]corev1.ServiceAccount))
		o.other++
	case "rbac.authorization.k8s.io/v1 Role":
		add(t, name, js, new([]rbacv1.Role))
		o.other++
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		add(t, name, js, new([]rbacv1.RoleBinding))
		o.other++
	default:
		t.Fatalf("%s: unexpected object %s", file, key)
	}
	if head.Kind != "Namespace" {
		if head.Metadata.Namespace == "" {
			t.Errorf("%s %s has no namespace: it would land in the release's", head.Kind, head.Metadata.Name)
		}
		o.byNS[head.Metadata.Namespace] = append(o.byNS[head.Metadata.Namespace], head.Kind+"/"+head.Metadata.Name)
	}
}

func seatValues(n int, extra map[string]any) map[string]any {
	v := map[string]any{"seats": n, "image": map[string]any{"repository": "registry.example.com/doublehop", "tag": "0.1.0"}}
	for k, x := range extra {
		v[k] = x
	}
	return v
}

func TestChartLints(t *testing.T) {
	for _, vals := range []map[string]any{seatValues(1, nil), seatValues(50, nil),
		seatValues(3, map[string]any{"expose": map[string]any{"web": "ingress", "kdc": "loadBalancer"}, "dc": map[string]any{"persistence": map[string]any{"enabled": true}}})} {
		lint := action.NewLint()
		lint.Strict = true
		r := lint.Run([]string{chartDir}, vals)
		for _, m := range r.Messages {
			t.Logf("lint: %s", m)
		}
		if len(r.Errors) > 0 {
			t.Errorf("helm lint (%d seats): %v", vals["seats"], r.Errors)
		}
	}
}

// The chart's invariants, for 1 and 50 seats.
func TestChartRendersSeatsApart(t *testing.T) {
	for _, n := range []int{1, 50} {
		t.Run(fmt.Sprintf("%d seats", n), func(t *testing.T) {
			o, notes := render(t, seatValues(n, nil))
			if len(o.namespaces) != n {
				t.Fatalf("%d namespaces for %d seats", len(o.namespaces), n)
			}
			nodePorts := map[int32]string{}
			for i, ns := range o.namespaces {
				want := fmt.Sprintf("lab-seat-%d", i+1)
				if !slices.ContainsFunc(o.namespaces, func(x corev1.Namespace) bool { return x.Name == want }) {
					t.Errorf("no namespace %s", want)
				}
				objs := o.byNS[ns.Name]
				for _, must := range []string{"Deployment/dc", "Deployment/web", "Deployment/sql", "Deployment/ws01", "Service/dc", "Service/web", "Service/sql",
					"Job/provision", "NetworkPolicy/seat-isolation", "ServiceAccount/provisioner", "Role/provisioner", "RoleBinding/provisioner"} {
					if !slices.Contains(objs, must) {
						t.Errorf("%s lacks %s", ns.Name, must)
					}
				}
			}
			if len(o.byNS) != n {
				t.Errorf("objects in %d namespaces, want %d (one per seat, nothing shared)", len(o.byNS), n)
			}
			// Keys and passwords only in the Secret the Job makes: none rendered,
			// none in a ConfigMap or an environment variable.
			if len(o.secrets) != 0 {
				t.Errorf("the chart renders %d Secrets: keys must come from the provisioning Job", len(o.secrets))
			}
			secrets := secretWords()
			for _, cm := range o.configMaps {
				for k, v := range cm.Data {
					for _, w := range secrets {
						if strings.Contains(strings.ToLower(k+v), strings.ToLower(w)) {
							t.Errorf("ConfigMap %s/%s holds %q", cm.Namespace, cm.Name, w)
						}
					}
				}
			}
			for _, d := range o.deployments {
				for _, c := range append(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers...) {
					for _, e := range c.Env {
						if e.Value != "" {
							t.Errorf("%s/%s: env %s has a value in the chart", d.Namespace, d.Name, e.Name)
						}
					}
					if c.ReadinessProbe == nil {
						t.Errorf("%s/%s: no readiness probe", d.Namespace, d.Name)
					}
					if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
						t.Errorf("%s/%s: no memory request and limit", d.Namespace, d.Name)
					}
					if c.Image != "registry.example.com/doublehop:0.1.0" {
						t.Errorf("%s/%s: image %s", d.Namespace, d.Name, c.Image)
					}
				}
				if d.Spec.Template.Spec.AutomountServiceAccountToken == nil || *d.Spec.Template.Spec.AutomountServiceAccountToken {
					t.Errorf("%s/%s mounts an API token it does not need", d.Namespace, d.Name)
				}
			}
			// Every seat's NetworkPolicy selects all its pods and admits its own
			// pods, plus only outside-the-pod-network traffic on attendee ports.
			for _, p := range o.policies {
				if len(p.Spec.PodSelector.MatchLabels)+len(p.Spec.PodSelector.MatchExpressions) != 0 {
					t.Errorf("%s: the policy does not select every pod", p.Namespace)
				}
				for _, r := range p.Spec.Ingress {
					for _, f := range r.From {
						if f.NamespaceSelector != nil {
							t.Errorf("%s: admits another namespace", p.Namespace)
						}
						if f.IPBlock != nil && !slices.Contains(f.IPBlock.Except, "10.244.0.0/16") {
							t.Errorf("%s: the pod network is not excepted: %+v", p.Namespace, f.IPBlock)
						}
					}
				}
			}
			// Node ports: unique over the whole workshop, in the default range.
			for _, s := range o.services {
				for _, p := range s.Spec.Ports {
					if p.NodePort == 0 {
						continue
					}
					if p.NodePort < 30000 || p.NodePort > 32767 {
						t.Errorf("%s/%s: node port %d outside 30000–32767", s.Namespace, s.Name, p.NodePort)
					}
					if other, dup := nodePorts[p.NodePort]; dup {
						t.Errorf("node port %d: %s and %s/%s", p.NodePort, other, s.Namespace, s.Name)
					}
					nodePorts[p.NodePort] = s.Namespace + "/" + s.Name
				}
			}
			if len(nodePorts) != 3*n {
				t.Errorf("%d node ports, want 3 per seat (KDC, page, LDAP)", len(nodePorts))
			}
			if !strings.Contains(notes, fmt.Sprintf("seat %d: page http://web.lab.local:", n)) {
				t.Errorf("NOTES.txt does not list seat %d:\n%s", n, notes)
			}
		})
	}
}

// secretWords are the default lab's passwords (a seat's are drawn by the
// Job; these must not leak into the chart either).
func secretWords() []string {
	var out []string
	for _, a := range directory.Default().Accounts {
		out = append(out, a.Password)
	}
	return append(out, "keytab\x05")
}

// The tiers run exactly provision.Plan's commands (plus the orchestrator's
// --seed and --resolve), and mount the Secret keys provision.SeatFiles makes.
func TestChartMatchesProvisionPlan(t *testing.T) {
	o, _ := render(t, seatValues(1, nil))
	l := directory.Default()
	tiers, err := provision.Plan(l)
	if err != nil {
		t.Fatal(err)
	}
	files, err := provision.SeatFiles(l, "x", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tier := range tiers {
		d := find(o.deployments, tier.Host.Short)
		if d == nil {
			t.Errorf("no Deployment for %s", tier.Host.Short)
			continue
		}
		c := d.Spec.Template.Spec.Containers[0]
		got := strip(c.Args, "--seed", "--resolve")
		if !slices.Equal(got, tier.Cmd) {
			t.Errorf("%s runs\n  %q\nprovision.Plan says\n  %q", tier.Host.Short, got, tier.Cmd)
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if _, ok := files[it.Key]; !ok {
					t.Errorf("%s mounts key %s, which the provisioning Job does not write", tier.Host.Short, it.Key)
				}
			}
		}
		for _, f := range tier.Files {
			if !mounts(d, path.Base(f.Path)) {
				t.Errorf("%s does not mount %s (%s)", tier.Host.Short, path.Base(f.Path), f.Path)
			}
		}
	}
	j := o.jobs[0].Spec.Template.Spec
	if j.ServiceAccountName != "provisioner" || j.Containers[0].Args[0] != "provision" {
		t.Errorf("provisioning job: %+v", j.Containers[0].Args)
	}
}

func find(ds []appsv1.Deployment, name string) *appsv1.Deployment {
	for i := range ds {
		if ds[i].Name == name {
			return &ds[i]
		}
	}
	return nil
}

// strip drops each flag named and its value.
func strip(args []string, flags ...string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if slices.Contains(flags, args[i]) {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

func mounts(d *appsv1.Deployment, key string) bool {
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret == nil {
			continue
		}
		for _, it := range v.Secret.Items {
			if it.Key == key {
				return true
			}
		}
	}
	return false
}

// Exposed by Ingress: one per seat at the seat's host, the Job puts that
// host's SPN on the web account, and the policy admits the controller.
func TestChartIngressSeats(t *testing.T) {
	o, _ := render(t, seatValues(3, map[string]any{"expose": map[string]any{"web": "ingress", "kdc": "loadBalancer"}}))
	if len(o.ingresses) != 3 {
		t.Fatalf("%d ingresses", len(o.ingresses))
	}
	for _, in := range o.ingresses {
		host := in.Spec.Rules[0].Host
		var job *batchv1.Job
		for k := range o.jobs {
			if o.jobs[k].Namespace == in.Namespace {
				job = &o.jobs[k]
			}
		}
		if job == nil || !slices.Contains(job.Spec.Template.Spec.Containers[0].Args, host) {
			t.Errorf("%s: the Job does not add HTTP/%s", in.Namespace, host)
		}
	}
	for _, s := range o.services {
		if s.Name == "dc-external" && s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			t.Errorf("%s: KDC service %s", s.Namespace, s.Spec.Type)
		}
		if s.Name == "web" && s.Spec.Type == corev1.ServiceTypeNodePort {
			t.Errorf("%s: web is a NodePort with an Ingress", s.Namespace)
		}
	}
	for _, p := range o.policies {
		admits := false
		for _, r := range p.Spec.Ingress {
			for _, f := range r.From {
				if f.NamespaceSelector != nil && f.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "ingress-nginx" {
					admits = true
				}
			}
		}
		if !admits {
			t.Errorf("%s: the ingress controller is not admitted", p.Namespace)
		}
	}
}
