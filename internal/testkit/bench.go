package testkit

import (
	"slices"
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
