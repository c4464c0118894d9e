package remote

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
)

// binary is agent-sessions built once for the tests: the remote binary the
// ssh hosts run.
var binary string

func TestMain(m *testing.M) { os.Exit(testkit.MainWithBinary(m, &binary)) }

// testHost is a host on a private sshd whose remote binary runs with its
// own HOME and tmux socket, so its sessions and files are the host's, never
// this test's or the user's. The tmux server is killed at the end.
func testHost(t *testing.T, s *testkit.SSHD, name string) Host {
	t.Helper()
	sock := "as-remote-" + randHex(6)
	home := t.TempDir()
	t.Cleanup(func() { testkit.KillTmuxServer(sock) }) // and its socket file
	return Host{
		Name: name, SSH: s.Alias, SSHArgs: s.SSHArgs(), Binary: binary,
		Env: map[string]string{
			"HOME":                              home,
			"AGENT_SESSIONS_TMUX_SOCKET":        sock,
			"AGENT_SESSIONS_NOTIFY":             "0",
			"AGENT_SESSIONS_MOCK_STEP":          "10ms",
			"AGENT_SESSIONS_MOCK_PLATEAU_AFTER": "100000",
			"AGENT_SESSIONS_KILL_GRACE":         "2s",
		},
	}
}

// testOptionsB is testOptions for a benchmark.
func testOptionsB(b *testing.B) Options {
	b.Helper()
	dir, err := os.MkdirTemp("", "as-ctl-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return Options{ControlDir: dir, ConnectTimeout: 3 * time.Second, CallTimeout: 20 * time.Second, ClientVersion: "bench"}
}

// testOptions use a short private control directory (a socket path must
// stay under ~104 bytes, which a t.TempDir path can exceed).
func testOptions(t *testing.T) Options {
	t.Helper()
	dir, err := os.MkdirTemp("", "as-ctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Generous bounds: the tests prove behaviour, not speed, on a shared
	// machine where a cold ssh login can take seconds.
	return Options{ControlDir: dir, ConnectTimeout: 5 * time.Second, CallTimeout: 30 * time.Second, ClientVersion: "test"}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// call calls a tool and decodes its result into a map; a failure fails t.
func call(t *testing.T, c *Conn, name string, args map[string]any) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw, err := c.CallTool(ctx, name, args)
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: decode %s: %v", name, raw, err)
	}
	return out
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// closedPort is a port on 127.0.0.1 with nothing listening.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return strconv.Itoa(port)
}

// silentPort accepts connections and never says a word: ssh waits for a
// banner that never comes, so only a timeout ends the call.
func silentPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// execShell runs line with sh -c, as sshd hands a remote command to the
// login shell (test only: production code never runs a shell).
func execShell(line string) (string, error) {
	out, err := exec.Command("sh", "-c", line).Output()
	return string(out), err
}

func errorsJoin(errs []error) error { return errors.Join(errs...) }
