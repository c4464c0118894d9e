package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// KillTmuxServer kills the tmux server on a private socket (-L socket) and
// removes the socket file, which tmux leaves behind. Tests only ever name
// their own sockets here: the user's default server is never touched.
func KillTmuxServer(socket string) {
	exec.Command("tmux", "-L", socket, "kill-server").Run()
	dir := os.Getenv("TMUX_TMPDIR")
	if dir == "" {
		dir = "/tmp"
	}
	os.Remove(filepath.Join(dir, fmt.Sprintf("tmux-%d", os.Getuid()), socket))
}
