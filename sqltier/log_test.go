package sqltier

import (
	"log/slog"
	"testing"

	"github.com/doublehop/doublehop/events"
)

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func eventsMemory() *events.Memory { return events.NewMemory(0) }
