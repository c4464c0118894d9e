package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// DefaultCallTimeout bounds a call whose context has no deadline.
const DefaultCallTimeout = 30 * time.Second

// Options tune a connection. The zero value is the defaults.
type Options struct {
	ConnectTimeout time.Duration // ssh connect + login + MCP initialize (default 3 s)
	CallTimeout    time.Duration // a call without its own deadline (default 30 s)
	ControlDir     string        // ssh control sockets (default ControlDir())
	ClientVersion  string        // reported to the remote server

	ssh string // the ssh client a connection runs (tests); "" is "ssh" on the PATH
}

func (o Options) withDefaults() (Options, error) {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.ClientVersion == "" {
		o.ClientVersion = "dev"
	}
	if o.ControlDir == "" {
		dir, err := ControlDir()
		if err != nil {
			return o, err
		}
		o.ControlDir = dir
	}
	return o, nil
}

// Conn is a kept-open MCP client of `<binary> serve` on one host, over
// ssh. It connects on the first call, and again on the next call after the
// connection dropped; the remote sessions live in tmux there and never
// depend on it. Safe for concurrent use.
type Conn struct {
	host Host
	opts Options

	mu     sync.Mutex // guards link and closed; held while connecting
	link   *link
	closed bool
}

// link is one running `ssh … serve` and the MCP client speaking over it.
type link struct {
	cmd    *exec.Cmd
	client *client.Client
	stderr *tail
	exited chan struct{} // closed once ssh has exited and been waited for
	exit   int           // ssh's exit status, set before exited closes
}

// New returns a connection to h that dials on first use.
func New(h Host, opts Options) (*Conn, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Conn{host: h, opts: o}, nil
}

// Dial returns a connection to h, connected now.
func Dial(ctx context.Context, h Host, opts Options) (*Conn, error) {
	c, err := New(h, opts)
	if err != nil {
		return nil, err
	}
	if _, err := c.connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Host is the host this connection reaches.
func (c *Conn) Host() Host { return c.host }

// ToolError is a tool's own error result (isError) from the remote server:
// its code, message and options, as the local server would give them.
type ToolError struct {
	Host    string
	Tool    string
	Code    string
	Message string
	Options json.RawMessage // the calls that resolve it, as the server sent them
	Text    string          // the text form, "Error (code): message …"
}

func (e *ToolError) Error() string {
	return fmt.Sprintf("host %q: %s: %s: %s", e.Host, e.Tool, e.Code, e.Message)
}

// CallTool calls a tool on the host and returns its structured result.
// A tool's error result is a *ToolError; a failure to reach the host an
// *Error. A request that never left (see do) is sent once more; one that
// may have run there never is.
func (c *Conn) CallTool(ctx context.Context, name string, args map[string]any) (json.RawMessage, error) {
	return c.callTool(ctx, name, args, false)
}

// CallRepeatable is CallTool for a tool that is read-only or idempotent:
// running it twice changes nothing more than once, so it is also sent once
// more when its connection is lost mid-call.
func (c *Conn) CallRepeatable(ctx context.Context, name string, args map[string]any) (json.RawMessage, error) {
	return c.callTool(ctx, name, args, true)
}

func (c *Conn) callTool(ctx context.Context, name string, args map[string]any, repeatable bool) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.do(ctx, name, repeatable, func(ctx context.Context, cl *client.Client) error {
		var req mcp.CallToolRequest
		req.Params.Name = name
		req.Params.Arguments = args
		res, err := cl.CallTool(ctx, req)
		if err != nil {
			return err
		}
		if res.StructuredContent != nil {
			if out, err = json.Marshal(res.StructuredContent); err != nil {
				return fmt.Errorf("host %q: %s: encode its result: %w", c.host.Name, name, err)
			}
		}
		if res.IsError {
			return c.toolError(name, out, res)
		}
		return nil
	})
	return out, err
}

func (c *Conn) toolError(name string, structured json.RawMessage, res *mcp.CallToolResult) *ToolError {
	te := &ToolError{Host: c.host.Name, Tool: name, Text: resultText(res.Content)}
	var body struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Options json.RawMessage `json:"options"`
	}
	if json.Unmarshal(structured, &body) == nil && body.Code != "" {
		te.Code, te.Message, te.Options = body.Code, body.Message, body.Options
	} else {
		te.Code, te.Message = "internal", te.Text
	}
	return te
}

// ReadResource reads a resource on the host and returns its text.
func (c *Conn) ReadResource(ctx context.Context, uri string) (string, error) {
	var text strings.Builder
	err := c.do(ctx, "read "+uri, true, func(ctx context.Context, cl *client.Client) error {
		var req mcp.ReadResourceRequest
		req.Params.URI = uri
		res, err := cl.ReadResource(ctx, req)
		if err != nil {
			return err
		}
		for _, rc := range res.Contents {
			if t, ok := rc.(mcp.TextResourceContents); ok {
				text.WriteString(t.Text)
			}
		}
		return nil
	})
	return text.String(), err
}

// do runs one request over the link, connecting first if needed, within
// the call timeout. A dropped connection fails the call with a clear
// error and is dialled again on the next call — or at once, for one more
// try, when the request never left or is repeatable.
func (c *Conn) do(ctx context.Context, what string, repeatable bool, f func(context.Context, *client.Client) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.CallTimeout)
		defer cancel()
	}
	unsent, err := c.attempt(ctx, what, f)
	if ctx.Err() == nil && (unsent || repeatable && errors.Is(err, ErrConnectionLost)) {
		_, err = c.attempt(ctx, what, f)
	}
	return err
}

// attempt sends one request over the current link. unsent: it never left —
// ssh had closed its input before it was written (EPIPE: it died idle, or
// right after its handshake), so the host cannot have run it.
func (c *Conn) attempt(ctx context.Context, what string, f func(context.Context, *client.Client) error) (unsent bool, err error) {
	l, err := c.connect(ctx)
	if err != nil {
		return false, err
	}
	err = f(ctx, l.client)
	var te *ToolError
	if err == nil || errors.As(err, &te) {
		return false, err
	}
	if errors.Is(err, syscall.EPIPE) {
		c.drop(l)
		return true, hostErr(c.host, ErrConnectionLost, "%s: the ssh connection to %s had closed before the request was sent (%s); the next call reconnects", what, c.host.SSH, l.reason())
	}
	if ctx.Err() != nil && !l.dead() {
		return false, hostErr(c.host, ErrTimeout, "%s: no answer within the call's time limit (%v); it may still complete there", what, context.Cause(ctx))
	}
	if !errors.Is(err, transport.ErrTransportClosed) && !l.dead() {
		// A protocol-level error (an unknown tool, bad params): the
		// connection itself is fine and is kept.
		return false, fmt.Errorf("host %q: %s: %w", c.host.Name, what, err)
	}
	// The transport sees the end of ssh's output before ssh is reaped:
	// give ssh a moment to exit so the error can say what it said.
	select {
	case <-l.exited:
	case <-time.After(time.Second):
	}
	c.drop(l)
	return false, hostErr(c.host, ErrConnectionLost, "%s: the ssh connection to %s was lost (%s); the host's sessions keep running, and the next call reconnects", what, c.host.SSH, l.reason())
}

// connect returns the live link, dialling one if there is none or the
// last one dropped.
func (c *Conn) connect(ctx context.Context) (*link, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("host %q: connection closed", c.host.Name)
	}
	if c.link != nil && !c.link.dead() {
		return c.link, nil
	}
	if c.link != nil {
		c.link.close()
		c.link = nil
	}
	l, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.link = l
	return l, nil
}

// drop forgets l if it is still the current link, and ends it.
func (c *Conn) drop(l *link) {
	c.mu.Lock()
	if c.link == l {
		c.link = nil
	}
	c.mu.Unlock()
	l.close()
}

// Close ends the connection: the remote server sees its stdin close and
// exits; sessions on the host keep running.
func (c *Conn) Close() error {
	c.mu.Lock()
	l := c.link
	c.link, c.closed = nil, true
	c.mu.Unlock()
	if l != nil {
		l.close()
	}
	return nil
}

func resultText(content []mcp.Content) string {
	var b strings.Builder
	for _, ct := range content {
		if t, ok := ct.(mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// tail keeps the last bytes written to it: ssh's stderr, for messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 4096

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

var _ io.Writer = (*tail)(nil)
