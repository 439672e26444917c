package bench

import (
	"context"
	"testing"
	"time"
)

// BenchmarkFlow is the full double hop, for pprof: go test ./bench -run X -bench Flow -cpuprofile cpu.out
func BenchmarkFlow(b *testing.B) {
	r, err := Flow(context.Background(), 2, b.N, 5*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	if r.Errors > 0 {
		b.Fatal(r.FirstErr)
	}
	b.ReportMetric(r.Rate(), "flows/s")
	b.ReportMetric(float64(r.P50.Microseconds())/1000, "p50-ms")
}
