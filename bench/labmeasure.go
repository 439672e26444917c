//go:build !nolab

package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/doublehop/doublehop/dockerlab"
)

// LabMeasureOptions configure MeasureLabs.
type LabMeasureOptions struct {
	Labs      int           // how many labs to start for the per-lab figures
	Settle    time.Duration // idle time before taking memory samples
	KeepImage bool          // do not remove the image first (measure a warm start)
}

// MeasureLabs measures the container lab: time from no image to Bob's first
// successful flow, the image size, idle memory per lab (with the engine's own
// overhead), and how many labs fit on this host. It removes what it started.
func MeasureLabs(ctx context.Context, o LabMeasureOptions, stdout io.Writer) error {
	n, settle, keepImage := &o.Labs, &o.Settle, &o.KeepImage
	if *n < 1 {
		*n = 1
	}
	e, _ := dockerlab.Engine(ctx)
	fmt.Fprintf(stdout, "measuring on Docker %s (%s, cgroup v%s), %d CPUs, %.1f GiB\n", e.Version, e.StorageDriver, e.CgroupVersion, e.CPUs, float64(e.Memory)/(1<<30))
	name := func(i int) string { return fmt.Sprintf("measure-%02d", i) }
	var labs []*dockerlab.Lab
	defer func() {
		t := time.Now()
		dctx, c := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer c()
		var names []string
		for i := 1; i <= *n; i++ {
			names = append(names, name(i))
		}
		dockerlab.DownAll(dctx, names, nil)
		for _, l := range labs {
			os.RemoveAll(l.StateDir)
		}
		fmt.Fprintf(stdout, "removed the %d measurement labs in %s\n", *n, time.Since(t).Round(time.Millisecond))
	}()
	for i := 1; i <= *n; i++ {
		dockerlab.Down(ctx, name(i))
	}
	if !*keepImage {
		removed, inUse, err := dockerlab.RemoveImages(ctx)
		if err != nil {
			return err
		}
		switch {
		case len(inUse) > 0:
			fmt.Fprintf(stdout, "note: image(s) %s in use by running labs: the first start below finds the image cached\n", strings.Join(inUse, ", "))
		case len(removed) > 0:
			fmt.Fprintf(stdout, "removed image(s) %s: the first start builds (go build, warm cache) and imports it\n", strings.Join(removed, ", "))
		}
	}
	memBefore := dockerlab.HostMemAvailable()
	ovBefore := dockerlab.EngineOverhead()
	// 1. Time to first flow, from no image.
	start := time.Now()
	img, err := dockerlab.EnsureImage(ctx, dockerlab.ImageOptions{})
	if err != nil {
		return err
	}
	l, err := dockerlab.Run(ctx, dockerlab.WithName(name(1)), dockerlab.WithOwner("measure"), dockerlab.WithEnsuredImage(img), dockerlab.WithFlow("bob"))
	if l != nil {
		labs = append(labs, l)
	}
	if err != nil {
		return fmt.Errorf("first lab: %w", err)
	}
	ttff := time.Since(start)
	how := "cached"
	if !img.Cached {
		how = "imported"
	}
	fmt.Fprintf(stdout, "time to first flow: %s (image %s: go build %s, import %s; tiers ready %s; Bob's flow %s)\n", ttff.Round(time.Millisecond), how,
		img.BuildTime.Round(time.Millisecond), img.ImportTime.Round(time.Millisecond), l.Timing.Tiers.Round(time.Millisecond), l.Timing.Flow.Round(time.Millisecond))
	fmt.Fprintf(stdout, "image %s: %.1f MB\n", img.Ref, float64(img.Size)/1e6)
	// 2. More labs.
	var ups []time.Duration
	for i := 2; i <= *n; i++ {
		t := time.Now()
		l, err := dockerlab.Run(ctx, dockerlab.WithName(name(i)), dockerlab.WithOwner("measure"), dockerlab.WithEnsuredImage(img), dockerlab.WithFlow("bob"))
		if l != nil {
			labs = append(labs, l)
		}
		if err != nil {
			fmt.Fprintf(stdout, "lab %d of %d failed: %v\n", i, *n, err)
			break
		}
		ups = append(ups, time.Since(t))
	}
	if len(ups) > 0 {
		sort.Slice(ups, func(i, j int) bool { return ups[i] < ups[j] })
		fmt.Fprintf(stdout, "%d more labs started one after another: median %s, slowest %s each (up + Bob's flow)\n", len(ups),
			ups[len(ups)/2].Round(time.Millisecond), ups[len(ups)-1].Round(time.Millisecond))
	}
	fmt.Fprintf(stdout, "idling %s before sampling memory...\n", *settle)
	select {
	case <-time.After(*settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	var total, rss uint64
	perTier := map[string]uint64{}
	for _, l := range labs {
		st, err := l.Stats(ctx)
		if err != nil {
			return err
		}
		for role, s := range st {
			total += s.Memory
			rss += s.RSS
			perTier[role] += s.Memory
		}
	}
	memAfter := dockerlab.HostMemAvailable()
	k := uint64(len(labs))
	perLab := total / k
	fmt.Fprintf(stdout, "idle memory per lab (docker stats, %d labs): %.1f MB (anon RSS %.1f MB); per tier:", k, float64(perLab)/1e6, float64(rss/k)/1e6)
	for _, role := range dockerlab.Roles {
		fmt.Fprintf(stdout, " %s %.1f MB", role, float64(perTier[role]/k)/1e6)
	}
	fmt.Fprintln(stdout)
	ov := dockerlab.EngineOverhead()
	var ovPerLab uint64
	if ov.Total() > ovBefore.Total() {
		ovPerLab = (ov.Total() - ovBefore.Total()) / k
	}
	fmt.Fprintf(stdout, "engine overhead per lab: %.1f MB (containerd shims %d→%d: %.1f MB, docker-proxy %d→%d: %.1f MB, dockerd+containerd growth %.1f MB; PSS)\n",
		float64(ovPerLab)/1e6, ovBefore.NShims, ov.NShims, float64(sub(ov.Shims, ovBefore.Shims)/k)/1e6, ovBefore.NProxies, ov.NProxies,
		float64(sub(ov.Proxies, ovBefore.Proxies)/k)/1e6, float64(sub(ov.Daemons, ovBefore.Daemons)/k)/1e6)
	if memBefore > memAfter {
		fmt.Fprintf(stdout, "host MemAvailable dropped by %.1f MB per lab (noisy: other processes, page cache)\n", float64((memBefore-memAfter)/k)/1e6)
	}
	// 3. How many fit: memory is the bound (keeping 10%% of the host free);
	// CPU is idle between flows, each tier takes one loopback port, and lab
	// networks fall back to 10.213.N.0/24 once the engine's pools run out.
	cost := perLab + ovPerLab
	if cost > 0 && memBefore > 0 {
		fit := uint64(float64(memBefore)*0.9) / cost
		fmt.Fprintf(stdout, "labs that fit on this host by memory: about %d (%.1f GiB available before, %.1f MB per lab with the engine's overhead); started %d\n",
			fit, float64(memBefore)/(1<<30), float64(cost)/1e6, len(labs))
	}
	return nil
}

func sub(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return 0
}
