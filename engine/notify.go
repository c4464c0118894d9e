package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Notification events (SPEC §15).
const (
	NotifyComplete = "complete"
	NotifyFailed   = "failed"
	NotifyKilled   = "killed"
	NotifyWaiting  = "waiting"
	NotifyParked   = "parked"
	NotifyBudget   = "budget"
)

// NotifyTimeout bounds a notify command.
const NotifyTimeout = 10 * time.Second

// NotifyEvent is the JSON object a notify command reads on stdin.
type NotifyEvent struct {
	Event       string     `json:"event"`
	Session     string     `json:"session"`
	Host        string     `json:"host"`
	ProjectDir  string     `json:"project_dir"`
	Status      string     `json:"status"`
	Reason      string     `json:"reason"`
	Question    string     `json:"question"`
	CostUSD     float64    `json:"cost_usd"`
	ParkedUntil *time.Time `json:"parked_until"`
}

// Notifier tells the user about a session's notable moments: the
// config's notify command when there is one, else the desktop. Sending
// never blocks the session and never fails it; what went wrong is logged.
// Events are delivered one at a time, in the order sent: a "complete"
// never overtakes the "waiting" before it.
type Notifier struct {
	// Command is the argv of config.yaml's notify.command (nil: desktop).
	Command []string
	// Desktop shows a desktop notification (Notify when nil).
	Desktop func(title, body string)
	// Log receives one line per failed command (the session log).
	Log func(format string, args ...any)
	// Timeout bounds the command (NotifyTimeout when 0).
	Timeout time.Duration

	wg      sync.WaitGroup
	mu      sync.Mutex
	queue   []NotifyEvent // sent, not yet delivered
	sending bool          // a goroutine is delivering the queue
}

// Send queues ev and returns at once; one goroutine delivers the queue in
// order. Wait collects what is in flight.
func (n *Notifier) Send(ev NotifyEvent) {
	if ev.Host == "" {
		ev.Host, _ = os.Hostname()
	}
	n.wg.Add(1)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queue = append(n.queue, ev)
	if !n.sending {
		n.sending = true
		go n.deliverQueue()
	}
}

// deliverQueue delivers queued events one by one until none is left.
func (n *Notifier) deliverQueue() {
	for {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.sending = false
			n.mu.Unlock()
			return
		}
		ev := n.queue[0]
		n.queue = n.queue[1:]
		n.mu.Unlock()
		n.deliver(ev)
		n.wg.Done()
	}
}

func (n *Notifier) deliver(ev NotifyEvent) {
	if len(n.Command) == 0 {
		n.desktop(ev)
		return
	}
	if err := n.run(ev); err != nil && n.Log != nil {
		n.Log("■ notify command %s for %q failed (the session goes on): %v\n", n.Command[0], ev.Event, err)
	}
}

// Wait returns once every notification sent so far is delivered or has
// timed out. The engine calls it before it exits, so the last event (the
// session's end) is not lost with the process.
func (n *Notifier) Wait() { n.wg.Wait() }

func (n *Notifier) desktop(ev NotifyEvent) {
	show := n.Desktop
	if show == nil {
		show = Notify
	}
	body := ev.Reason
	if ev.Question != "" {
		body = ev.Question
	}
	if ev.ParkedUntil != nil {
		body = strings.TrimSpace(body + " until " + ev.ParkedUntil.Local().Format("15:04"))
	}
	show("agent-sessions: "+ev.Session+" "+ev.Event, body)
}

// run executes the command with ev on stdin: an argv, never a shell, in
// its own process group so a timeout ends whatever it started.
func (n *Notifier) run(ev NotifyEvent) error {
	timeout := n.Timeout
	if timeout <= 0 {
		timeout = NotifyTimeout
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.Command[0], n.Command[1:]...)
	cmd.Stdin = bytes.NewReader(append(payload, '\n'))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A child that keeps the output pipe open must not hold us past the
	// timeout.
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("no answer within %s, stopped", timeout)
	case err != nil:
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("%w: %s", err, truncate(firstLineOf(msg), 300))
		}
		return err
	}
	return nil
}

// Notify shows a desktop notification where the platform has a way to
// (notify-send, osascript); it is best effort and quiet. Setting
// AGENT_SESSIONS_NOTIFY=0 turns it off.
func Notify(title, body string) {
	if os.Getenv("AGENT_SESSIONS_NOTIFY") == "0" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var cmd *exec.Cmd
	switch {
	case runtime.GOOS == "darwin":
		if _, err := exec.LookPath("osascript"); err != nil {
			return
		}
		script := fmt.Sprintf("display notification %q with title %q", body, title)
		cmd = exec.CommandContext(ctx, "osascript", "-e", script)
	default:
		if _, err := exec.LookPath("notify-send"); err != nil {
			return
		}
		cmd = exec.CommandContext(ctx, "notify-send", "--app-name=agent-sessions", title, body)
	}
	cmd.Run()
}
