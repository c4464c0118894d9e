package workspace

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"
)

// BenchmarkChangeRecord measures what the change record adds to an
// iteration in a small git repository: Before, then After of one new
// commit (a fresh Local each time, as a new engine has). The median is
// reported: on a shared machine the mean is mostly other people's load.
// So are two figures load does not change much: the git processes a
// record runs (gitruns/record) and the CPU they and this process used
// (cpu-ms/record).
func BenchmarkChangeRecord(b *testing.B) {
	dir := b.TempDir()
	gitB(b, dir, "init", "-q")
	for i := 0; i < 50; i++ {
		writeB(b, filepath.Join(dir, fmt.Sprintf("f%02d.go", i)), "package x\n")
	}
	gitB(b, dir, "add", ".")
	gitB(b, dir, "commit", "-q", "-m", "base")
	var samples []time.Duration
	var cpu time.Duration
	runs := gitRuns.Load() // gitB's runs are not counted: only the package's
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ws := NewLocal(dir)
		b.StartTimer()
		start, cpuStart := time.Now(), cpuUsed()
		before := ws.Before(bg)
		b.StopTimer()
		elapsed, cpuBefore := time.Since(start), cpuUsed()-cpuStart
		writeB(b, filepath.Join(dir, "f00.go"), fmt.Sprintf("package x\n// %d\n", i))
		gitB(b, dir, "commit", "-q", "-am", fmt.Sprintf("c%d", i))
		b.StartTimer()
		start, cpuStart = time.Now(), cpuUsed()
		c := ws.After(bg, before)
		samples = append(samples, elapsed+time.Since(start))
		cpu += cpuBefore + cpuUsed() - cpuStart
		if c == nil || c.CommitCount != 1 {
			b.Fatalf("record %+v", c)
		}
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds())/1000, "ms/record")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/record")
	b.ReportMetric(float64(gitRuns.Load()-runs)/float64(b.N), "gitruns/record")
	b.ReportMetric(0, "ns/op")
}

// cpuUsed is the CPU time of this process and of its children that have
// been waited for (the git runs), user and system.
func cpuUsed() time.Duration {
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	var total time.Duration
	for _, tv := range []syscall.Timeval{self.Utime, self.Stime, children.Utime, children.Stime} {
		total += time.Duration(tv.Nano())
	}
	return total
}

func gitB(b *testing.B, dir string, args ...string) {
	b.Helper()
	if out, err := gitCmd(dir, args...).CombinedOutput(); err != nil {
		b.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func writeB(b *testing.B, path, content string) {
	b.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
}
