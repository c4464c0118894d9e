//go:build !linux

package testkit

// roomyTmpfs is false where /dev/shm is not known to be a tmpfs: the
// scratch directory goes to the system's temp dir.
func roomyTmpfs(dir string, free uint64) bool { return false }
