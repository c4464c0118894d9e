package testkit

import (
	"slices"
	"testing"
	"time"
)

// Median is the median of a benchmark's per-operation samples (0 for
// none): the benchmarks report medians, which one slow sample on a shared
// machine does not move.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// Ms is d in milliseconds, for b.ReportMetric.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Samples runs op once per iteration of b.Loop and returns how long each
// run took, for a benchmark that reports the median (Median) rather than
// the mean.
func Samples(b *testing.B, op func()) []time.Duration {
	var samples []time.Duration
	for b.Loop() {
		t0 := time.Now()
		op()
		samples = append(samples, time.Since(t0))
	}
	return samples
}
