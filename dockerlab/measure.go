package dockerlab

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/doublehop/doublehop/internal/engine"
)

// TierStats is one container's resource use, as `docker stats` shows it.
type TierStats struct {
	Memory uint64 // bytes: usage minus inactive file cache (docker stats' MEM USAGE)
	RSS    uint64 // bytes: anonymous memory (cgroup rss)
	PIDs   uint64
}

// Stats returns every tier's resource use (one sample each, taken in parallel).
func (l *Lab) Stats(ctx context.Context) (map[string]TierStats, error) {
	out := map[string]TierStats{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for role, t := range l.Tiers {
		wg.Add(1)
		go func(role, id string) {
			defer wg.Done()
			s, err := containerStats(ctx, l.cli, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", role, err)
				}
				return
			}
			out[role] = s
		}(role, t.ID)
	}
	wg.Wait()
	return out, firstErr
}

// Memory is the lab's total memory as docker stats counts it.
func Memory(s map[string]TierStats) uint64 {
	var n uint64
	for _, t := range s {
		n += t.Memory
	}
	return n
}

func containerStats(ctx context.Context, cli *engine.Client, id string) (TierStats, error) {
	st, err := cli.ContainerStats(ctx, id)
	if err != nil {
		return TierStats{}, err
	}
	m := st.MemoryStats
	// As the docker CLI: cgroup v1 subtracts total_inactive_file, v2 inactive_file.
	inactive := m.Stats["total_inactive_file"]
	if inactive == 0 {
		inactive = m.Stats["inactive_file"]
	}
	mem := m.Usage
	if inactive < mem {
		mem -= inactive
	}
	rss := m.Stats["total_rss"]
	if rss == 0 {
		rss = m.Stats["anon"]
	}
	return TierStats{Memory: mem, RSS: rss, PIDs: st.PidsStats.Current}, nil
}

// RemoveImages removes the lab images (repository doublehop) that no
// container uses, and returns the ones it removed and the ones still in use.
func RemoveImages(ctx context.Context) (removed, inUse []string, err error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, nil, err
	}
	imgs, err := cli.ImageList(ctx, engine.Filters{}.Add("reference", ImageRepo))
	if err != nil {
		return nil, nil, err
	}
	for _, im := range imgs {
		for _, tag := range im.RepoTags {
			if err := cli.ImageRemove(ctx, tag, false); err != nil {
				if strings.Contains(err.Error(), "being used") || strings.Contains(err.Error(), "conflict") {
					inUse = append(inUse, tag)
					continue
				}
				return removed, inUse, err
			}
			removed = append(removed, tag)
		}
	}
	return removed, inUse, nil
}

// HostMemAvailable is the host's MemAvailable (bytes), 0 where unknown.
func HostMemAvailable() uint64 {
	return meminfo("MemAvailable:")
}

// HostMemTotal is the host's MemTotal (bytes), 0 where unknown.
func HostMemTotal() uint64 {
	return meminfo("MemTotal:")
}

func meminfo(key string) uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == key {
			n, _ := strconv.ParseUint(fs[1], 10, 64)
			return n * 1024
		}
	}
	return 0
}

// EngineInfo is what the lab reports about the Docker engine.
type EngineInfo struct {
	Version, APIVersion, OS, Arch, StorageDriver, CgroupVersion string
	CPUs                                                        int
	Memory                                                      int64
}

// Engine describes the Docker engine.
func Engine(ctx context.Context) (EngineInfo, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return EngineInfo{}, err
	}
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		return EngineInfo{}, err
	}
	e := EngineInfo{Version: v.Version, APIVersion: v.APIVersion, OS: v.Os, Arch: v.Arch}
	if in, err := cli.Info(ctx); err == nil {
		e.StorageDriver, e.CgroupVersion, e.CPUs, e.Memory = in.Driver, in.CgroupVersion, in.NCPU, in.MemTotal
	}
	return e, nil
}

// Overhead is the engine's own memory for running containers: one
// containerd-shim per container, one docker-proxy per published port, and the
// daemons. Figures are proportional set sizes (shared pages split among the
// processes that map them) where the kernel reports them, else RSS.
type Overhead struct {
	Shims, Proxies, Daemons uint64 // bytes
	NShims, NProxies        int
}

// Total is the sum.
func (o Overhead) Total() uint64 { return o.Shims + o.Proxies + o.Daemons }

// EngineOverhead reads the engine's processes from /proc (Linux, local engine).
func EngineOverhead() Overhead {
	var o Overhead
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return o
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(cmd) == 0 {
			continue
		}
		exe := strings.SplitN(string(cmd), "\x00", 2)[0]
		base := exe[strings.LastIndexByte(exe, '/')+1:]
		var kind *uint64
		switch {
		case strings.HasPrefix(base, "containerd-shim"):
			kind = &o.Shims
			o.NShims++
		case base == "docker-proxy":
			kind = &o.Proxies
			o.NProxies++
		case base == "dockerd" || base == "containerd":
			kind = &o.Daemons
		default:
			continue
		}
		*kind += procMem(e.Name())
	}
	return o
}

// procMem is a process's Pss (smaps_rollup), else its VmRSS, in bytes.
func procMem(pid string) uint64 {
	for _, f := range []struct{ file, key string }{{"smaps_rollup", "Pss:"}, {"status", "VmRSS:"}} {
		b, err := os.ReadFile("/proc/" + pid + "/" + f.file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			if len(fs) >= 2 && fs[0] == f.key {
				n, _ := strconv.ParseUint(fs[1], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}
