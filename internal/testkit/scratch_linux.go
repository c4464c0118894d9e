package testkit

import "syscall"

// tmpfsMagic is TMPFS_MAGIC from linux/magic.h.
const tmpfsMagic = 0x01021994

// roomyTmpfs reports whether dir is a writable tmpfs with at least free
// bytes available.
func roomyTmpfs(dir string, free uint64) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Type != tmpfsMagic {
		return false
	}
	if syscall.Access(dir, 0x2 /* W_OK */) != nil {
		return false
	}
	return st.Bavail*uint64(st.Bsize) >= free
}
