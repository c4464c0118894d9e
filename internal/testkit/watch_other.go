//go:build !linux

package testkit

// loop polls: without inotify there is nothing to wake the watch.
func (w *FileWatch) loop(r *fileReader) { w.poll(r) }
