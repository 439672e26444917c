package bench

import (
	"context"
	"testing"
	"time"
)

// BenchmarkFlow is the full double hop, for pprof: go test ./bench -run X -bench Flow -cpuprofile cpu.out
func BenchmarkFlow(b *testing.B) { benchFlow(b, false) }

// BenchmarkFlowNTLM is the NTLM fallback's page logon (by IP address).
func BenchmarkFlowNTLM(b *testing.B) { benchFlow(b, true) }

func benchFlow(b *testing.B, ntlm bool) {
	r, err := Flow(context.Background(), 2, b.N, 5*time.Minute, ntlm)
	if err != nil {
		b.Fatal(err)
	}
	if r.Errors > 0 {
		b.Fatal(r.FirstErr)
	}
	b.ReportMetric(r.Rate(), "flows/s")
	b.ReportMetric(float64(r.P50.Microseconds())/1000, "p50-ms")
}
