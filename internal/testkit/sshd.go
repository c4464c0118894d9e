package testkit

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SSHDPath is the OpenSSH server the fixture runs. It must be started by an
// absolute path: sshd re-executes itself for every connection.
const SSHDPath = "/usr/sbin/sshd"

// SSHD is a real OpenSSH server on 127.0.0.1 and a free port, private to one
// test: its own host key, a client key made for the test, and an ssh_config
// that reaches it as Alias with the host key pinned, so that tests run
// `ssh -F ConfigFile Alias …` exactly as a user would with their own config.
type SSHD struct {
	Dir        string // everything the fixture made: keys, configs, pid file, log
	Alias      string // the Host name in ConfigFile
	Port       int
	ConfigFile string // the client's ssh_config (ssh -F)
	KeyFile    string // the client's private key
	Home       string // HOME of every ssh session: empty, so no login shell rc runs

	t       testing.TB
	cfg     string // sshd_config
	logFile string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// StartSSHD starts a private sshd for t and stops it (with every connection
// it serves) at the end of the test. It skips when OpenSSH is missing, but
// fails under CI, where .ci/run installs openssh-server.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	for _, p := range []string{SSHDPath, "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing; CI must have OpenSSH (apt-get install openssh-server openssh-client)", p)
			}
			t.Skipf("%s is missing: install openssh-server to run the SSH tests", p)
		}
	}
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("make /run/sshd (sshd's privilege separation directory): %v", err)
	}
	s := &SSHD{Dir: t.TempDir(), Alias: "testhost", t: t}
	s.cfg = filepath.Join(s.Dir, "sshd_config")
	s.logFile = filepath.Join(s.Dir, "sshd.log")
	s.ConfigFile = filepath.Join(s.Dir, "ssh_config")
	s.KeyFile = filepath.Join(s.Dir, "client_key")
	s.Home = filepath.Join(s.Dir, "home")
	if err := os.Mkdir(s.Home, 0o755); err != nil {
		t.Fatal(err)
	}
	s.Port = sshFreePort(t)
	s.writeFiles()
	t.Cleanup(s.stop)
	s.startOnFreePort()
	return s
}

// startOnFreePort starts sshd on s.Port, or on another free port while it
// finds its port taken: a port found free can be taken before sshd binds it
// (by another test's sshd, here or in another test process).
func (s *SSHD) startOnFreePort() {
	s.t.Helper()
	for attempt := 1; !s.startOnce(); attempt++ {
		if attempt == 5 {
			s.t.Fatalf("sshd found its port taken %d times in a row\n%s", attempt, s.Log())
		}
		s.Port = sshFreePort(s.t)
		s.writeConfigs()
	}
}

// SSHArgs are the ssh arguments that reach the server: -F ConfigFile.
func (s *SSHD) SSHArgs() []string { return []string{"-F", s.ConfigFile} }

// Log is what sshd has logged so far (for failure messages).
func (s *SSHD) Log() string {
	data, _ := os.ReadFile(s.logFile)
	return string(data)
}

func (s *SSHD) writeFiles() {
	t := s.t
	t.Helper()
	hostKey := filepath.Join(s.Dir, "host_key")
	for _, key := range []string{hostKey, s.KeyFile} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "agent-sessions-test", "-f", key).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen %s: %v\n%s", key, err, out)
		}
	}
	sshWriteFile(t, filepath.Join(s.Dir, "authorized_keys"), sshReadFile(t, s.KeyFile+".pub"))
	s.writeConfigs()
}

// writeConfigs writes what names the port: the server's and the client's
// configs and the client's known_hosts.
func (s *SSHD) writeConfigs() {
	t := s.t
	t.Helper()
	hostKey := filepath.Join(s.Dir, "host_key")
	hostPub := sshReadFile(t, hostKey+".pub")
	authorized := filepath.Join(s.Dir, "authorized_keys")
	sshWriteFile(t, filepath.Join(s.Dir, "known_hosts"),
		fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, hostPub))
	u, err := user.Current()
	if err != nil {
		t.Fatalf("current user: %v", err)
	}
	sshWriteFile(t, s.cfg, strings.Join([]string{
		"ListenAddress 127.0.0.1",
		"Port " + strconv.Itoa(s.Port),
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(s.Dir, "sshd.pid"),
		"AuthorizedKeysFile " + authorized,
		"UsePAM no",
		// The keys live in a test's temp dir, whose parents sshd would
		// otherwise insist be owned by root and not group-writable.
		"StrictModes no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"PermitRootLogin prohibit-password",
		"PrintMotd no",
		"Subsystem sftp internal-sftp",
		// The remote command runs under the user's login shell, and bash
		// run by sshd sources ~/.bashrc: a user's rc (pyenv, nvm, …) would
		// cost every ssh call of every test its startup, and make the
		// far side the user's rather than the test's. An empty HOME of the
		// test's own keeps the sessions hermetic and cheap.
		"SetEnv HOME=" + s.Home,
		// The key exchange is not what the tests test, and OpenSSH's
		// default one (sntrup761x25519, post-quantum) costs the client
		// about 140 ms of CPU a connection here against 15 ms for
		// curve25519: the suite's ssh links spent seconds in it. The
		// server offers curve25519 alone, so every client agrees on it;
		// the product's ssh argv is unchanged, and a real host still
		// negotiates what it and the user's ssh prefer.
		"KexAlgorithms curve25519-sha256",
		"LogLevel VERBOSE",
		"",
	}, "\n"))
	sshWriteFile(t, s.ConfigFile, strings.Join([]string{
		"Host " + s.Alias,
		"  HostName 127.0.0.1",
		"  Port " + strconv.Itoa(s.Port),
		"  User " + u.Username,
		"  IdentityFile " + s.KeyFile,
		"  IdentitiesOnly yes",
		"  IdentityAgent none",
		"  UserKnownHostsFile " + filepath.Join(s.Dir, "known_hosts"),
		"  GlobalKnownHostsFile /dev/null",
		"  StrictHostKeyChecking yes",
		"  BatchMode yes",
		"  LogLevel ERROR",
		"",
	}, "\n"))
}

// startOnce runs sshd in the foreground (-D) logging to its log file (-e)
// and waits until it says it listens on its port; false when sshd found
// the port taken. A banner on the port was once taken for sshd's: it could
// be another sshd's, which had taken the port first, and the tests' ssh
// then met that server's host key ("Host key verification failed").
func (s *SSHD) startOnce() bool {
	t := s.t
	t.Helper()
	offset := len(s.Log())
	listening := fmt.Sprintf("Server listening on 127.0.0.1 port %d.", s.Port)
	log, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("sshd log: %v", err)
	}
	defer log.Close()
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", s.cfg)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if said := s.Log()[offset:]; strings.Contains(said, listening) {
			return true
		}
		select {
		case <-done:
			if strings.Contains(s.Log()[offset:], "Address already in use") {
				return false
			}
			t.Fatalf("sshd exited at start: %v\n%s", cmd.ProcessState, s.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not answer on port %d within 20 s\n%s", s.Port, s.Log())
		}
	}
}

// Stop kills sshd and every connection it serves, as a crash of the host's
// sshd or a dropped network would: every ssh client of it sees its
// connection end. Processes that left sshd's tree (a tmux server daemonizes)
// keep running, as they would on a real host.
func (s *SSHD) Stop() {
	s.t.Helper()
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	// Stopped first so it forks no new connection while its tree is read;
	// each connection's sshd calls setsid, so a process group kill would
	// miss them.
	cmd.Process.Signal(syscall.SIGSTOP)
	for _, pid := range append(sshDescendants(cmd.Process.Pid), cmd.Process.Pid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.t.Errorf("sshd (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// Restart starts sshd again on the same port with the same keys.
func (s *SSHD) Restart() {
	s.t.Helper()
	s.Stop()
	if !s.startOnce() {
		s.t.Fatalf("sshd could not restart: port %d was taken meanwhile\n%s", s.Port, s.Log())
	}
}

func (s *SSHD) stop() { s.Stop() }

// sshDescendants lists every process below pid, read from /proc.
func sshDescendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name may hold spaces and parentheses: the fields
		// after the last ')' are fixed (state, then ppid).
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// sshFreePort asks the kernel for a free port on 127.0.0.1.
func sshFreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func sshReadFile(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func sshWriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
