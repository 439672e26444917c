package dockerlab

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/internal/peer"
)

// The docker CLI's path (docker build with docker/Dockerfile, here through the
// engine's classic builder, as `docker build` without buildx does) makes the
// same image as the Go import path: same entrypoint, command, ports, labels
// and size.
func TestDockerfileBuildsTheImportedImage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := Available(ctx); err != nil {
		peer.Missing(t, "no Docker engine reachable: "+err.Error())
	}
	img, err := EnsureImage(ctx, ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile(filepath.Join("..", "docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(img.Binary)
	if err != nil {
		t.Fatal(err)
	}
	var bc bytes.Buffer
	tw := tar.NewWriter(&bc)
	for _, f := range []struct {
		name string
		b    []byte
		mode int64
	}{{"Dockerfile", df, 0o644}, {"doublehop", bin, 0o755}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.b)), ModTime: time.Now()})
		tw.Write(f.b)
	}
	tw.Close()
	cli, _ := dockerClient(ctx)
	tag := "doublehop-dockerfile-test:" + randomName()
	if err := cli.ImageBuild(ctx, &bc, tag, map[string]string{LabelOwner: "labtest"}); err != nil {
		t.Fatalf("docker build: %v", err)
	}
	defer cli.ImageRemove(context.WithoutCancel(ctx), tag, true)
	built, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	imported, err := cli.ImageInspect(ctx, img.Ref)
	if err != nil {
		t.Fatal(err)
	}
	b, i := built.Config, imported.Config
	delete(b.Labels, LabelOwner)
	if !reflect.DeepEqual(b.Entrypoint, i.Entrypoint) || !reflect.DeepEqual(b.Cmd, i.Cmd) || !reflect.DeepEqual(b.ExposedPorts, i.ExposedPorts) ||
		!reflect.DeepEqual(b.Labels, i.Labels) || !reflect.DeepEqual(b.Env, i.Env) || b.WorkingDir != i.WorkingDir || b.User != i.User {
		t.Fatalf("docker build and import differ:\nbuild:  %+v\nimport: %+v", b, i)
	}
	if built.Size != imported.Size || len(built.RootFS.Layers) != 1 || len(imported.RootFS.Layers) != 1 {
		t.Fatalf("sizes %d / %d, layers %d / %d", built.Size, imported.Size, len(built.RootFS.Layers), len(imported.RootFS.Layers))
	}
	t.Logf("docker build and import agree: %s, %d bytes, entrypoint %v cmd %v", img.Ref, img.Size, i.Entrypoint, i.Cmd)
}

// make build compiles with the image binary's flags, or a fresh machine's
// make lab-up compiles the whole dependency tree twice.
func TestMakeBuildCompilesAsTheImage(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	_, recipe, ok := strings.Cut(string(mk), "\nbuild:\n")
	if !ok {
		t.Fatal("no build target in the Makefile")
	}
	line, _, _ := strings.Cut(recipe, "\n")
	for _, f := range CompileFlags {
		if !strings.Contains(line, " "+f+" ") {
			t.Errorf("make build (%s) lacks %s", strings.TrimSpace(line), f)
		}
	}
}
