package helm

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/dockerlab"
	"github.com/doublehop/doublehop/internal/peer"
	"github.com/doublehop/doublehop/provision"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	corev1 "k8s.io/api/core/v1"
)

// The rendered seat runs: each Deployment's container, with its args and its
// volumes filled as the kubelet would (the Secret's items from what the
// provisioning Job writes, the ConfigMap's data), becomes a Docker
// container on a network where the seat's Service names (dc, web, sql)
// resolve as cluster DNS resolves them in the seat's namespace. Each
// readiness probe passes, then Bob's flow from ws01 with NOTES.txt's
// commands: the page says LAB\bob and SQL's KERBEROS. What is not run: a
// kubelet, Services' virtual IPs, the NetworkPolicy, the Job against an API
// server (its API calls are tested against a fake one in package provision).
func TestRenderedSeatRunsInContainers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := dockerlab.Available(ctx); err != nil {
		peer.Missing(t, "no Docker engine reachable: "+err.Error())
	}
	img, err := dockerlab.EnsureImage(ctx, dockerlab.ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := dockerlab.APIClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o, notes := render(t, map[string]any{"seats": 1, "image": map[string]any{"repository": strings.Split(img.Ref, ":")[0], "tag": strings.Split(img.Ref, ":")[1]}})
	lab, bob, err := provision.Seat(directory.Default(), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := provision.SeatFiles(lab, bob, "")
	if err != nil {
		t.Fatal(err)
	}
	cms := map[string]map[string]string{}
	for _, cm := range o.configMaps {
		cms[cm.Name] = cm.Data
	}

	label := map[string]string{"org.doublehop.owner": "helmtest", "org.doublehop.pid": fmt.Sprint(os.Getpid())}
	netName := fmt.Sprintf("doublehop-helmtest-%d", os.Getpid())
	netID, err := cli.NetworkCreate(ctx, network.CreateRequest{Name: netName, Driver: "bridge", Labels: label})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	t.Cleanup(func() {
		c := context.Background()
		for _, id := range ids {
			cli.ContainerRemove(c, id, true)
		}
		cli.NetworkRemove(c, netID)
	})

	byName := map[string]string{}
	for _, d := range o.deployments {
		spec := d.Spec.Template.Spec
		c := spec.Containers[0]
		if c.Image != img.Ref {
			t.Fatalf("%s runs %s, want %s", d.Name, c.Image, img.Ref)
		}
		files, err := podFiles(spec, c, secret, cms)
		if err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		id, err := cli.ContainerCreate(ctx, fmt.Sprintf("doublehop-helmtest-%d-%s", os.Getpid(), d.Name),
			&container.Config{Image: img.Ref, Cmd: c.Args, Hostname: spec.Hostname, Labels: label},
			&container.HostConfig{NetworkMode: container.NetworkMode(netName), Tmpfs: map[string]string{"/tmp": "rw,mode=1777,size=16m"}},
			&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
				netName: {Aliases: []string{d.Name}}}}) // the Service's name in the namespace
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		byName[d.Name] = id
		if err := cli.CopyToContainer(ctx, id, "/", tarOf(t, files)); err != nil {
			t.Fatal(err)
		}
		if err := cli.ContainerStart(ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	// Readiness, as the kubelet probes it.
	for _, d := range o.deployments {
		probe := readinessAsProbe(d.Spec.Template.Spec.Containers[0].ReadinessProbe)
		deadline := time.Now().Add(30 * time.Second)
		for {
			r, err := dockerlab.ExecIn(ctx, cli, byName[d.Name], nil, probe...)
			if err == nil && r.ExitCode == 0 {
				t.Logf("%s ready: %s", d.Name, strings.Join(probe, " "))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never ready (%v): %v %s", d.Name, probe, err, r.Stderr)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}

	// Bob's flow with NOTES.txt's commands.
	base := notesClient(t, notes)
	run := func(ctx context.Context, stdin io.Reader, args ...string) (dockerlab.ExecResult, error) {
		if args[0] == "kinit" {
			args = append([]string{"kinit", "--password-stdin"}, args[1:]...)
			stdin = strings.NewReader(bob + "\n")
		}
		return dockerlab.ExecIn(ctx, cli, byName["ws01"], stdin, append(base, args...)...)
	}
	f, err := dockerlab.WorkstationFlow(ctx, run, "bob", "http://web.lab.local/", "LAB")
	if err != nil {
		t.Fatalf("Bob's flow in the rendered seat: %v\n%s", err, f.Summary())
	}
	t.Logf("Bob's flow: %s", f.Summary())
}

// podFiles is what the kubelet would put in the container: each Secret or
// ConfigMap volume's items (or all keys) under its mount, or the one key of
// a subPath mount.
func podFiles(spec corev1.PodSpec, c corev1.Container, secret map[string][]byte, cms map[string]map[string]string) ([]dockerlab.File, error) {
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	var out []dockerlab.File
	for _, m := range c.VolumeMounts {
		v := vols[m.Name]
		data := map[string][]byte{}
		var items []corev1.KeyToPath
		switch {
		case v.Secret != nil:
			if v.Secret.SecretName != "seat" {
				return nil, fmt.Errorf("secret %s", v.Secret.SecretName)
			}
			data, items = secret, v.Secret.Items
		case v.ConfigMap != nil:
			for k, s := range cms[v.ConfigMap.Name] {
				data[k] = []byte(s)
			}
			items = v.ConfigMap.Items
		default:
			continue // emptyDir, PVC
		}
		if len(items) == 0 {
			for k := range data {
				items = append(items, corev1.KeyToPath{Key: k, Path: k})
			}
		}
		for _, it := range items {
			b, ok := data[it.Key]
			if !ok {
				return nil, fmt.Errorf("volume %s: no key %s", m.Name, it.Key)
			}
			switch {
			case m.SubPath == "":
				out = append(out, dockerlab.File{Path: path.Join(m.MountPath, it.Path), Content: b, Mode: 0o600})
			case m.SubPath == it.Path:
				out = append(out, dockerlab.File{Path: m.MountPath, Content: b, Mode: 0o644})
			}
		}
	}
	return out, nil
}

func tarOf(t *testing.T, files []dockerlab.File) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(strings.TrimPrefix(f.Path, "/")); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Now()})
		}
		tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(f.Path, "/"), Mode: f.Mode, Size: int64(len(f.Content)), ModTime: time.Now()})
		tw.Write(f.Content)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// readinessAsProbe turns a readiness probe into the same check by the
// image's own probe command.
func readinessAsProbe(p *corev1.Probe) []string {
	switch {
	case p.Exec != nil:
		return p.Exec.Command[1:]
	case p.HTTPGet != nil:
		return []string{"probe", "--http", p.HTTPGet.Path, fmt.Sprintf("127.0.0.1:%d", p.HTTPGet.Port.IntValue())}
	case p.TCPSocket != nil:
		return []string{"probe", fmt.Sprintf("127.0.0.1:%d", p.TCPSocket.Port.IntValue())}
	}
	return []string{"probe"}
}

// notesClient is the `doublehop client` invocation NOTES.txt gives
// (everything between "/doublehop" and the verb).
func notesClient(t *testing.T, notes string) []string {
	t.Helper()
	for _, line := range strings.Split(notes, "\n") {
		if i := strings.Index(line, "-- /doublehop client "); i >= 0 && strings.HasSuffix(line, " kinit bob") {
			f := strings.Fields(line[i+len("-- /doublehop "):])
			return f[:len(f)-2]
		}
	}
	t.Fatalf("NOTES.txt has no kinit line:\n%s", notes)
	return nil
}
