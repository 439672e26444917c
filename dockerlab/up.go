package dockerlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// UpOptions are what `doublehop lab up` (make lab-up) asks for.
type UpOptions struct {
	Name       string
	StateDir   string
	Fresh      bool   // replace a running lab even when it runs the current image
	LabFile    string // start from this lab file
	Scenario   string // start with a catalog scenario's setup applied
	FixedPorts bool   // DefaultPorts(Name) instead of random ports
	Flow       bool   // run Bob's flow at the end
	Progress   io.Writer
}

// UpResult is the lab that runs, and how it got there.
type UpResult struct {
	Lab    *Lab
	Reused bool        // a healthy lab on the current image was already running
	Flow   *FlowResult // Bob's flow, when asked for
	Took   time.Duration
}

// ErrInterrupted is returned when the context was cancelled while the lab
// came up; what was made is removed.
var ErrInterrupted = errors.New("interrupted")

// Up brings the named lab up for a person at a terminal: the image (built
// and imported when missing), then either the running lab of that name when
// every tier runs this image (lab-up twice is safe and quick) or a fresh one.
// When the lab runs but Bob's flow fails, the result is returned with the
// flow's error. When ctx is cancelled midway, the half-made lab is removed.
func Up(ctx context.Context, o UpOptions) (*UpResult, error) {
	start := time.Now()
	out := o.Progress
	if out == nil {
		out = io.Discard
	}
	if e, err := Engine(ctx); err == nil {
		fmt.Fprintf(out, "lab %q on Docker %s (API %s, %s/%s, %s)\n", o.Name, e.Version, e.APIVersion, e.OS, e.Arch, e.StorageDriver)
	}
	img, err := EnsureImage(ctx, ImageOptions{})
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if !o.Fresh && o.LabFile == "" && o.Scenario == "" {
		if l, ok := reusable(ctx, o.Name, o.StateDir, img.Ref); ok {
			fmt.Fprintf(out, "[1/2] lab %q already runs image %s: reusing it (--fresh replaces it)\n", o.Name, img.Ref)
			fr, err := l.Flow(ctx, "bob")
			if err == nil {
				fmt.Fprintf(out, "[2/2] Bob's flow from ws01: %s\n", fr.Summary())
			} else {
				fmt.Fprintf(out, "[2/2] Bob's flow from ws01: %v\n", err)
			}
			return &UpResult{Lab: l, Reused: true, Flow: fr, Took: time.Since(start)}, err
		}
	}
	os.RemoveAll(o.StateDir)
	opts := []Option{WithName(o.Name), WithOwner("cli"), WithStateDir(o.StateDir), WithEnsuredImage(img), WithProgress(out)}
	if o.FixedPorts {
		opts = append(opts, WithPorts(DefaultPorts(o.Name)))
	}
	if o.Flow {
		opts = append(opts, WithFlow("bob"))
	}
	if o.LabFile != "" {
		opts = append(opts, WithLabFile(o.LabFile))
	}
	if o.Scenario != "" {
		opts = append(opts, WithScenario(o.Scenario))
	}
	l, err := Run(ctx, opts...)
	res := &UpResult{Lab: l, Took: time.Since(start)}
	if l != nil {
		res.Flow = l.FirstFlow
	}
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		dctx, c := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer c()
		Down(dctx, o.Name)
		os.RemoveAll(o.StateDir)
		return nil, fmt.Errorf("lab %q: %w", o.Name, ErrInterrupted)
	}
	return res, err
}

// reusable returns the running lab of that name when every tier runs image ref.
func reusable(ctx context.Context, name, stateDir, ref string) (*Lab, bool) {
	list, err := List(ctx)
	if err != nil {
		return nil, false
	}
	for _, s := range list {
		if s.Name == name && s.Image == ref && s.Running() && len(s.Tiers) == len(Roles) && s.Owner == "cli" {
			l, err := Attach(ctx, name, WithStateDir(stateDir))
			return l, err == nil
		}
	}
	return nil, false
}

// DownAll removes labs, four at a time, calling done after each.
func DownAll(ctx context.Context, names []string, done func(name string, took time.Duration, err error)) error {
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, n := range names {
		wg.Add(1)
		go func(n string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t := time.Now()
			err := Down(ctx, n)
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("lab %s: %w", n, err))
				mu.Unlock()
			}
			if done != nil {
				done(n, time.Since(t), err)
			}
		}(n)
	}
	wg.Wait()
	return errors.Join(errs...)
}
