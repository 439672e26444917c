package dockerlab

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/doublehop/doublehop/internal/engine"
)

// ImageRepo is the repository of the lab image; the tag is the first 16 hex
// digits of a SHA-256 over the binary and ImageChanges, so an unchanged tree
// is never imported twice.
const ImageRepo = "doublehop"

// Module and main package of the binary the image holds.
const (
	Module      = "github.com/doublehop/doublehop"
	MainPackage = Module + "/cmd/doublehop"
)

// ImageChanges are the image's settings: exactly the instructions that follow
// `FROM scratch` and `COPY doublehop /doublehop` in docker/Dockerfile (a test
// keeps the two in sync). They are applied when the rootfs is imported.
//
// No EXPOSE: one image plays four roles, and testcontainers-go publishes every
// EXPOSEd port on all interfaces for a container that asks for none (ws01).
var ImageChanges = []string{
	// docker build sets this PATH on every image; the import says it too, so both are equal.
	`ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
	`ENTRYPOINT ["/doublehop"]`,
	`CMD ["help"]`,
	`LABEL org.opencontainers.image.title="doublehop" org.opencontainers.image.description="Kerberos delegation lab: KDC, web tier, SQL tier and client in one static Go binary" org.opencontainers.image.source="https://github.com/doublehop/doublehop"`,
}

// CompileFlags are the flags that decide how packages compile, the same for
// the image binary and `make build` (a test holds the Makefile to them), so
// a fresh machine's `make lab-up` compiles every package once: no paths, and
// no DWARF (the image's binary is linked without it anyway; 16 % less compile).
var CompileFlags = []string{"-trimpath", "-gcflags=all=-dwarf=false"}

// BuildFlags are the go build flags of the image binary: CompileFlags, no
// symbol tables, and without the `lab` command (which drives Docker from the
// host and has no use inside a container).
var BuildFlags = append(CompileFlags[:len(CompileFlags):len(CompileFlags)], "-ldflags=-s -w", "-tags=nolab")

// Image is the lab image in the engine.
type Image struct {
	Ref        string // doublehop:<hash>
	ID         string
	Binary     string // the binary it was made from
	Size       int64  // bytes, as docker images shows it
	Cached     bool   // the engine already had it
	Built      string // how the binary was obtained: "go build", "given", "self"
	BuildTime  time.Duration
	ImportTime time.Duration
}

// ImageOptions picks the binary.
type ImageOptions struct {
	// Binary is a static linux binary to use as is (default: build it from
	// source with go build, else use the running doublehop executable).
	Binary string
	// Ref, when set, is an image that already exists; nothing is built.
	Ref string
	// Dir receives the built binary (default: build/image in the doublehop
	// source tree, else the user cache directory).
	Dir string
}

// EnsureImage makes sure the lab image exists in the engine: build the static
// binary (go build is a no-op for an unchanged tree), hash it, and import a
// one-file rootfs tagged by that hash unless the engine already has it.
func EnsureImage(ctx context.Context, opt ImageOptions) (Image, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return Image{}, err
	}
	if opt.Ref == "" {
		opt.Ref = os.Getenv("DOUBLEHOP_IMAGE")
	}
	if opt.Ref != "" {
		ins, err := cli.ImageInspect(ctx, opt.Ref)
		if err != nil {
			return Image{}, fmt.Errorf("image %s: %w", opt.Ref, err)
		}
		return Image{Ref: opt.Ref, ID: ins.ID, Size: ins.Size, Cached: true, Built: "given"}, nil
	}
	arch := "amd64"
	if v, err := cli.ServerVersion(ctx); err == nil && v.Arch != "" {
		arch = v.Arch
	}
	img := Image{}
	start := time.Now()
	bin := opt.Binary
	if bin == "" {
		bin = os.Getenv("DOUBLEHOP_BINARY")
	}
	var data []byte
	if bin != "" {
		img.Built = "given"
		if data, err = readStatic(bin, arch); err != nil {
			return img, err
		}
	} else {
		bin, data, err = buildBinary(ctx, opt.Dir, arch)
		img.Built = "go build"
		if err != nil {
			// No Go toolchain or no source: the running doublehop, when it
			// can run in the image (static, linux, the engine's arch).
			self, serr := os.Executable()
			if serr == nil {
				if d, serr := readStatic(self, arch); serr == nil {
					bin, data, img.Built, err = self, d, "self", nil
				}
			}
			if err != nil {
				return img, err
			}
		}
	}
	img.Binary, img.BuildTime = bin, time.Since(start)
	img.Ref = ImageRepo + ":" + contentTag(data)
	if ins, err := cli.ImageInspect(ctx, img.Ref); err == nil {
		img.ID, img.Size, img.Cached = ins.ID, ins.Size, true
		return img, nil
	} else if !engine.IsNotFound(err) {
		return img, fmt.Errorf("image %s: %w", img.Ref, err)
	}
	t := time.Now()
	rootfs, err := imageRootfs(data)
	if err != nil {
		return img, err
	}
	repo, tag, _ := strings.Cut(img.Ref, ":")
	if err := cli.ImageImport(ctx, rootfs, repo, tag, ImageChanges, "doublehop lab image ("+img.Built+")"); err != nil {
		return img, fmt.Errorf("import %s: %w", img.Ref, err)
	}
	ins, err := cli.ImageInspect(ctx, img.Ref)
	if err != nil {
		return img, fmt.Errorf("import %s: %w", img.Ref, err)
	}
	img.ID, img.Size, img.ImportTime = ins.ID, ins.Size, time.Since(t)
	return img, nil
}

// contentTag names an image by its content: the binary and the image settings.
func contentTag(bin []byte) string {
	h := sha256.New()
	h.Write(bin)
	for _, c := range ImageChanges {
		h.Write([]byte("\n" + c))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// imageRootfs is the image's whole filesystem: /doublehop, mode 0755, root's.
// (/tmp is a tmpfs at run time; every other path is copied in per tier.)
func imageRootfs(bin []byte) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "doublehop", Mode: 0o755, Size: int64(len(bin)),
		ModTime: time.Unix(0, 0)}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	return &buf, tw.Close()
}

// readStatic reads a binary that can run alone in a scratch image: ELF for
// linux on arch, with no interpreter (statically linked).
func readStatic(path, arch string) ([]byte, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: not a linux binary: %w", path, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "386": elf.EM_386, "arm": elf.EM_ARM,
		"riscv64": elf.EM_RISCV, "ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390}
	if m, ok := want[arch]; ok && f.Machine != m {
		return nil, fmt.Errorf("%s: built for %v, the engine runs %s", path, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("%s: dynamically linked (build with CGO_ENABLED=0)", path)
		}
	}
	return os.ReadFile(path)
}

// SourceDir returns the doublehop module's directory as the go command sees
// it from the current directory, and whether it is the main module (a
// checkout, writable) rather than a dependency in the module cache.
//
// Outside any module that knows doublehop, it looks for the checkout the
// running executable was built in (bin/doublehop run from elsewhere).
func SourceDir(ctx context.Context) (dir string, main bool, err error) {
	dir, main, err = sourceDirFrom(ctx, "")
	if err == nil {
		return dir, main, nil
	}
	if exe, xerr := os.Executable(); xerr == nil {
		for d := filepath.Dir(exe); d != filepath.Dir(d); d = filepath.Dir(d) {
			b, rerr := os.ReadFile(filepath.Join(d, "go.mod"))
			if rerr != nil {
				continue
			}
			if first, _, _ := strings.Cut(string(b), "\n"); strings.TrimSpace(first) == "module "+Module {
				return d, true, nil
			}
			break
		}
	}
	return "", false, err
}

func sourceDirFrom(ctx context.Context, wd string) (dir string, main bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd(), "list", "-m", "-f", "{{.Dir}}|{{.Main}}", Module)
	cmd.Dir = wd
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", false, fmt.Errorf("go list %s: %s", Module, firstLine(string(ee.Stderr)))
		}
		return "", false, fmt.Errorf("go list %s: %w", Module, err)
	}
	d, m, _ := strings.Cut(strings.TrimSpace(string(out)), "|")
	if d == "" {
		return "", false, fmt.Errorf("go list %s: no source directory", Module)
	}
	return d, m == "true", nil
}

func goCmd() string {
	if g := os.Getenv("GO"); g != "" {
		if p, err := exec.LookPath(g); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// BinaryDir is where the image binary is built: build/image in a checkout,
// else the user cache directory.
func BinaryDir(ctx context.Context) (string, error) {
	src, main, err := SourceDir(ctx)
	if err != nil {
		return "", err
	}
	return binaryDir(src, main)
}

func binaryDir(src string, main bool) (string, error) {
	if main {
		return filepath.Join(src, "build", "image"), nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "doublehop", "image"), nil
}

// buildBinary runs go build for the engine's platform into dir/doublehop
// (under a lock: tests and the CLI may build at once) and returns its bytes.
// The go command's own cache makes this a no-op for an unchanged tree.
func buildBinary(ctx context.Context, dir, arch string) (string, []byte, error) {
	src, main, err := SourceDir(ctx)
	if err != nil {
		return "", nil, err
	}
	if dir == "" {
		if dir, err = binaryDir(src, main); err != nil {
			return "", nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	out := filepath.Join(dir, "doublehop")
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", nil, err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	args := append([]string{"build"}, BuildFlags...)
	args = append(args, "-o", out, MainPackage)
	cmd := exec.CommandContext(ctx, goCmd(), args...)
	if main {
		cmd.Dir = src // the checkout, wherever the command runs from
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", nil, fmt.Errorf("go build %s: %v\n%s", MainPackage, err, tail(stderr.String(), 20))
	}
	data, err := readStatic(out, arch)
	return out, data, err
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Dockerfile returns docker/Dockerfile's instructions (comments and blank
// lines dropped), for the sync test and for staging a docker build context.
func Dockerfile(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	cont := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSpace(strings.TrimSuffix(line, "\\")) + " "
			continue
		}
		out = append(out, cont+line)
		cont = ""
	}
	return out, sc.Err()
}

// StageDockerContext writes a docker build context (Dockerfile + binary) to
// dir, for people who build the same image with `docker build dir`.
func StageDockerContext(dockerfile []byte, binary, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	if filepath.Clean(binary) != filepath.Join(filepath.Clean(dir), "doublehop") {
		if err := os.WriteFile(filepath.Join(dir, "doublehop"), b, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "Dockerfile"), dockerfile, 0o644)
}
