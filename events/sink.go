package events

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Sink receives events. Implementations are safe for concurrent use.
type Sink interface {
	Emit(Event)
}

// Discard drops every event.
var Discard Sink = discard{}

type discard struct{}

func (discard) Emit(Event) {}

// Stamp fills Time, Host and Tier when the emitter left them empty.
func Stamp(s Sink, host, tier string, now func() time.Time) Sink {
	if now == nil {
		now = time.Now
	}
	return stamp{s, host, tier, now}
}

type stamp struct {
	s          Sink
	host, tier string
	now        func() time.Time
}

func (s stamp) Emit(e Event) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	if e.Host == "" {
		e.Host = s.host
	}
	if e.Tier == "" {
		e.Tier = s.tier
	}
	s.s.Emit(e)
}

// JSONWriter writes one JSON object per line; each event is one write call, so
// several processes can append to the same file (O_APPEND).
type JSONWriter struct {
	mu sync.Mutex
	w  io.Writer
	c  io.Closer
}

// NewJSONWriter wraps w.
func NewJSONWriter(w io.Writer) *JSONWriter { return &JSONWriter{w: w} }

// OpenFile appends to path (created 0600, parent directories 0700).
func OpenFile(path string) (*JSONWriter, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &JSONWriter{w: f, c: f}, nil
}

// Emit implements Sink.
func (j *JSONWriter) Emit(e Event) {
	b := append(e.AppendJSON(make([]byte, 0, 512)), '\n')
	j.mu.Lock()
	j.w.Write(b)
	j.mu.Unlock()
}

// Close closes the underlying file, if any.
func (j *JSONWriter) Close() error {
	if j.c == nil {
		return nil
	}
	return j.c.Close()
}

// Memory keeps events in memory (tests, the web page's recent history).
type Memory struct {
	mu  sync.Mutex
	evs []Event
	max int
}

// NewMemory keeps at most max events (0 = unbounded).
func NewMemory(max int) *Memory { return &Memory{max: max} }

// Emit implements Sink.
func (m *Memory) Emit(e Event) {
	m.mu.Lock()
	m.evs = append(m.evs, e)
	if m.max > 0 && len(m.evs) > m.max {
		m.evs = append(m.evs[:0:0], m.evs[len(m.evs)-m.max:]...)
	}
	m.mu.Unlock()
}

// Events returns a copy of what was emitted.
func (m *Memory) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Event(nil), m.evs...)
}

// Multi fans out to several sinks.
type Multi []Sink

// Emit implements Sink.
func (m Multi) Emit(e Event) {
	for _, s := range m {
		if s != nil {
			s.Emit(e)
		}
	}
}

// MaxLine bounds one event line when reading (a corrupt file never makes the reader allocate more).
const MaxLine = 1 << 20

// Read decodes JSON lines; lines that are not events (container log noise) are skipped.
func Read(r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), MaxLine)
	var out []Event
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var e Event
		if json.Unmarshal([]byte(line), &e) != nil || e.ID == 0 && e.Message == "" {
			continue
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// ReadDir reads every *.jsonl file in dir and returns one time-ordered timeline.
func ReadDir(dir string) ([]Event, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	var all []Event
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		evs, err := Read(fh)
		fh.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, evs...)
	}
	Sort(all)
	return all, nil
}

// Sort orders events by time (stable, so one tier's order is kept for equal stamps).
func Sort(evs []Event) {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
}

// Filter selects events; zero fields match everything.
type Filter struct {
	Since   time.Time
	Tier    string
	Host    string
	ID      int
	Client  string // substring, case-insensitive
	Failure bool   // only failures
}

// Match reports whether e passes the filter.
func (f Filter) Match(e Event) bool {
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if f.Tier != "" && !strings.EqualFold(f.Tier, e.Tier) {
		return false
	}
	if f.Host != "" && !strings.EqualFold(f.Host, e.Host) && !strings.HasPrefix(strings.ToLower(e.Host), strings.ToLower(f.Host)+".") {
		return false
	}
	if f.ID != 0 && f.ID != e.ID {
		return false
	}
	if f.Client != "" && !strings.Contains(strings.ToLower(e.Client+" "+e.Login), strings.ToLower(f.Client)) {
		return false
	}
	if f.Failure && e.Outcome != Failure {
		return false
	}
	return true
}

// Apply returns the events that match.
func (f Filter) Apply(evs []Event) []Event {
	var out []Event
	for _, e := range evs {
		if f.Match(e) {
			out = append(out, e)
		}
	}
	return out
}
