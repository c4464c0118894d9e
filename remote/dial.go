package remote

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// dial starts `ssh … <binary> serve` and initializes an MCP client over
// its stdin and stdout. ssh is started without the call's context: the
// process is the connection, kept open across calls until Close or a drop.
func (c *Conn) dial(ctx context.Context) (*link, error) {
	// Connect, log in, start the remote server and answer initialize: the
	// connect timeout twice over, plus a second for the server to start.
	ctx, cancel := context.WithTimeout(ctx, 2*c.opts.ConnectTimeout+time.Second)
	defer cancel()
	argv := sshArgv(c.host, c.opts.ControlDir, c.opts.ConnectTimeout, remoteCommand(c.host, "serve"))
	if c.opts.ssh != "" {
		argv[0] = c.opts.ssh
	}
	l := &link{stderr: &tail{}, exited: make(chan struct{})}
	l.cmd = exec.Command(argv[0], argv[1:]...)
	l.cmd.Stderr = l.stderr
	// The ControlPersist master forked by the first ssh must not keep
	// Wait waiting on the stderr pipe it may have inherited.
	l.cmd.WaitDelay = time.Second
	stdin, err := l.cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("host %q: ssh stdin: %w", c.host.Name, err)
	}
	stdout, err := l.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("host %q: ssh stdout: %w", c.host.Name, err)
	}
	if err := l.cmd.Start(); err != nil {
		return nil, hostErr(c.host, ErrUnreachable, "cannot run ssh: %v (is OpenSSH's client installed?)", err)
	}
	go l.wait()
	l.client = client.NewClient(transport.NewIO(stdout, stdin, nil))
	// The transport keeps Start's context for requests the server sends
	// us: it must outlive this dial.
	if err := l.client.Start(context.Background()); err != nil {
		l.close()
		return nil, fmt.Errorf("host %q: start the MCP client: %w", c.host.Name, err)
	}
	var req mcp.InitializeRequest
	req.Params.ClientInfo = mcp.Implementation{Name: "agent-sessions-remote", Version: c.opts.ClientVersion}
	if _, err := l.client.Initialize(ctx, req); err != nil {
		return nil, c.dialFailed(ctx, l, err)
	}
	return l, nil
}

// dialFailed explains a failed dial from ssh's exit and stderr.
func (c *Conn) dialFailed(ctx context.Context, l *link, err error) error {
	if ctx.Err() == nil {
		// Initialize failed before the deadline: ssh has exited or is
		// about to; wait for it so its message is complete.
		select {
		case <-l.exited:
		case <-time.After(2 * time.Second):
		}
	}
	l.close()
	if l.dead() && l.exit != 0 {
		return classify(c.host, l.exit, l.stderr.String())
	}
	if ctx.Err() != nil {
		msg := lastLine(l.stderr.String())
		if msg == "" {
			msg = "nothing from ssh"
		}
		return hostErr(c.host, ErrTimeout, "no answer from %s serve on %s in time (connecting may take up to %v; %s)", binaryOf(c.host), c.host.SSH, 2*c.opts.ConnectTimeout+time.Second, msg)
	}
	return hostErr(c.host, ErrConnectionLost, "%s serve on %s did not start an MCP session: %v (%s)", binaryOf(c.host), c.host.SSH, err, lastLine(l.stderr.String()))
}

// wait reaps ssh and records how it ended.
func (l *link) wait() {
	err := l.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		l.exit = ee.ExitCode()
	default:
		l.exit = 255 // killed by a signal: the connection is gone
	}
	close(l.exited)
}

func (l *link) dead() bool {
	select {
	case <-l.exited:
		return true
	default:
		return false
	}
}

// reason says how ssh ended, from its last stderr line.
func (l *link) reason() string {
	if msg := lastLine(l.stderr.String()); msg != "" {
		return msg
	}
	return fmt.Sprintf("ssh exited with status %d", l.exit)
}

// close ends the link: closing stdin lets the remote server exit; ssh is
// killed if it has not ended within two seconds.
func (l *link) close() {
	if l.client != nil {
		l.client.Close()
	}
	select {
	case <-l.exited:
		return
	case <-time.After(2 * time.Second):
	}
	l.cmd.Process.Signal(syscall.SIGKILL)
	<-l.exited
}
