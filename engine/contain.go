package engine

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
)

// Containment mechanisms, strongest first (SPEC §14). Whatever an agent
// starts — through setsid, setpgid, job control or `env -i` — is ended with
// it by the strongest one the platform gives.
const (
	// ContainCgroup: a cgroup v2 per agent, created before the agent runs
	// (clone3 into it) and killed whole with cgroup.kill. Nothing escapes
	// short of a root agent moving itself to another cgroup.
	ContainCgroup = "cgroup"
	// ContainSubreaper: the engine is a child subreaper, so processes
	// orphaned by a double fork are re-parented to it; a walk of the /proc
	// process tree finds them along with the agent's descendants, its
	// process group and the processes carrying its environment marker.
	ContainSubreaper = "subreaper"
	// ContainPgroup: the agent's process group and the environment marker
	// only (what remains where neither of the above is possible).
	ContainPgroup = "pgroup"
)

// ContainmentEnv forces a mechanism (cgroup, subreaper or pgroup); unset or
// "auto" means the strongest available. Tests use it to exercise fallbacks.
const ContainmentEnv = "AGENT_SESSIONS_CONTAINMENT"

// containerEnv names the container an agent process belongs to; it is the
// last-resort marker of the fallbacks (lost to `env -i`).
const containerEnv = "AGENT_SESSIONS_CONTAINER"

// cgroupParent is the directory under the cgroup2 mount holding every
// session's cgroup; nothing outside it is ever touched.
const cgroupParent = "agent-sessions"

// Scope is the containment of one session: which mechanism its agents get
// and, for cgroups, the session's cgroup directory (one leaf per agent).
type Scope struct {
	Mechanism string `json:"mechanism"`
	Cgroup    string `json:"cgroup,omitempty"`
	RunDir    string `json:"run_dir"`
	// Why says why a weaker mechanism than cgroup is in use.
	Why string `json:"why,omitempty"`
}

var cg2Root = sync.OnceValues(findCgroup2)

// findCgroup2 returns the mount point of the cgroup v2 hierarchy from
// /proc/self/mountinfo. On hybrid setups it is not /sys/fs/cgroup itself
// (e.g. /sys/fs/cgroup/unified), so the path is never assumed.
func findCgroup2() (string, error) {
	if runtime.GOOS != "linux" {
		return "", errors.New("cgroups exist only on linux")
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "id parent maj:min root mountpoint opts... - fstype source superopts"
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		if fields := strings.Fields(pre); len(fields) >= 5 {
			return unescapeMount(fields[4]), nil
		}
	}
	return "", errors.New("no cgroup2 file system is mounted")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// SessionCgroup is the deterministic cgroup directory of a session, so that
// a resumed engine, the server's kill or cleanup can find a crashed run's
// agents: <cgroup2>/agent-sessions/<hash(project)>-<session>. It is "" when
// there is no cgroup2 hierarchy.
func SessionCgroup(projectDir, session string) string {
	root, err := cg2Root()
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(projectDir))
	return filepath.Join(root, cgroupParent, hex.EncodeToString(sum[:6])+"-"+session)
}

// NewScope decides the containment of a session's agents: a cgroup where
// one can be created (it creates the session's cgroup), else the subreaper
// walk. AGENT_SESSIONS_CONTAINMENT forces a mechanism; a forced cgroup that
// cannot be created is an error, never a silent downgrade.
func NewScope(projectDir, session, runDir string) (Scope, error) {
	s := Scope{RunDir: runDir}
	want := os.Getenv(ContainmentEnv)
	switch want {
	case "", "auto", ContainCgroup:
		dir, err := makeSessionCgroup(projectDir, session)
		if err == nil {
			s.Mechanism, s.Cgroup = ContainCgroup, dir
			return s, nil
		}
		if want == ContainCgroup {
			return s, fmt.Errorf("%w: %s=cgroup but no cgroup can be created: %w; unset it to use the strongest mechanism available", ErrInvalid, ContainmentEnv, err)
		}
		s.Why = "no cgroup: " + err.Error()
		s.Mechanism = ContainSubreaper
	case ContainSubreaper, ContainPgroup:
		s.Mechanism, s.Why = want, "forced by "+ContainmentEnv
	default:
		return s, fmt.Errorf("%w: %s=%q: use cgroup, subreaper, pgroup or auto", ErrInvalid, ContainmentEnv, want)
	}
	if s.Mechanism == ContainSubreaper {
		if err := setSubreaper(); err != nil {
			s.Mechanism, s.Why = ContainPgroup, "no child subreaper: "+err.Error()
		}
	}
	return s, nil
}

func makeSessionCgroup(projectDir, session string) (string, error) {
	dir := SessionCgroup(projectDir, session)
	if dir == "" {
		_, err := cg2Root()
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		return "", fmt.Errorf("cgroup.kill is missing (kernel older than 5.14): %w", err)
	}
	return dir, nil
}

// Close removes the session's cgroup once it is empty (the engine ends).
func (s Scope) Close() {
	if s.Cgroup != "" {
		removeCgroupTree(s.Cgroup)
	}
}

// Container holds one agent process and everything it starts. Stop and
// Kill end all of it; they may be called from any goroutine, any number of
// times (a provider that sees the agent's final result may stop it early).
type Container struct {
	scope  Scope
	name   string
	dir    string   // the agent's cgroup (cgroup mechanism)
	fd     *os.File // dir, open for clone3 (CgroupFD)
	leader int
	since  uint64 // the leader's start time (clock ticks after boot)
	// procs reads the process table (allProcs; nil where there is no
	// /proc, as on macOS and the BSDs). A test replaces it.
	procs func() []procInfo
	// wholeGroup: the last walk found no process table, so the leader
	// stands for its process group (walkMembers).
	wholeGroup bool

	mu      sync.Mutex
	stopped map[int]bool // processes Stop/Kill signalled
}

// NewContainer makes the container of one agent (one iteration or one
// parallel run), named uniquely within the session.
func (s Scope) NewContainer(name string) (*Container, error) {
	c := &Container{scope: s, name: name, stopped: map[int]bool{}, procs: allProcs}
	if s.Mechanism != ContainCgroup {
		return c, nil
	}
	c.dir = filepath.Join(s.Cgroup, name)
	if err := os.Mkdir(c.dir, 0o755); errors.Is(err, fs.ErrExist) {
		// A crashed attempt of the same iteration: its processes go first.
		killCgroup(c.dir, 0)
	} else if err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", c.dir, err)
	}
	fd, err := os.Open(c.dir)
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s: %w", c.dir, err)
	}
	c.fd = fd
	return c, nil
}

// Mechanism is the containment in use.
func (c *Container) Mechanism() string { return c.scope.Mechanism }

// Env is the marker the agent's environment carries.
func (c *Container) Env() string { return containerEnv + "=" + c.scope.RunDir + "#" + c.name }

// prepare places the agent in the container at spawn: with a cgroup, the
// kernel creates the process inside it (clone3 CLONE_INTO_CGROUP), so not
// even its first fork can race out.
func (c *Container) prepare(attr *syscall.SysProcAttr) {
	if c.fd != nil {
		spawnIntoCgroup(attr, int(c.fd.Fd()))
	}
}

func (c *Container) started(pid int) {
	st, _ := procStat(pid)
	c.mu.Lock()
	c.leader, c.since = pid, st.start
	c.mu.Unlock()
	if c.scope.Mechanism == ContainSubreaper {
		registerLeader(pid)
	}
}

// Pids lists the container's live processes (zombies excluded).
func (c *Container) Pids() []int {
	if c.dir != "" {
		return cgroupPids(c.dir)
	}
	c.mu.Lock()
	leader, since := c.leader, c.since
	c.mu.Unlock()
	// Under the subreaper every escapee stays in the engine's process tree;
	// only the process group mechanism needs the (costlier) marker scan.
	marker := ""
	if c.scope.RunDir != "" && c.scope.Mechanism == ContainPgroup {
		marker = c.Env()
	}
	pids, whole := walkMembers(c.procs, leader, c.scope.Mechanism == ContainSubreaper, marker, since)
	c.mu.Lock()
	c.wholeGroup = whole
	c.mu.Unlock()
	return pids
}

// Stop ends everything in the container: SIGTERM (and SIGCONT, as a
// stopped process acts on nothing else) to every process, up to grace for
// them to go, then SIGKILL to what is left. It returns once nothing of the
// container runs, and reports how many processes it signalled in all.
func (c *Container) Stop(grace time.Duration) int {
	deadline := time.Now().Add(grace)
	// Each process gets one SIGTERM: a second could cut short the cleanup
	// the first one started.
	termed := map[int]bool{}
	for {
		pids := c.Pids()
		if len(pids) == 0 {
			return c.Stopped()
		}
		if !time.Now().Before(deadline) {
			return c.Kill()
		}
		var fresh []int
		for _, p := range pids {
			if !termed[p] {
				termed[p] = true
				fresh = append(fresh, p)
			}
		}
		c.signal(fresh, syscall.SIGTERM)
		c.signal(fresh, syscall.SIGCONT)
		time.Sleep(25 * time.Millisecond)
	}
}

// Kill ends everything in the container at once (cgroup.kill, or SIGKILL
// to each process found) and waits until it is gone.
func (c *Container) Kill() int {
	if c.dir != "" {
		c.record(cgroupPids(c.dir))
		killCgroup(c.dir, 5*time.Second)
		return c.Stopped()
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		pids := c.Pids()
		if len(pids) == 0 {
			break
		}
		c.signal(pids, syscall.SIGKILL)
	}
	return c.Stopped()
}

// Stopped is how many processes Stop or Kill signalled.
func (c *Container) Stopped() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.stopped)
}

func (c *Container) record(pids []int) {
	c.mu.Lock()
	for _, p := range pids {
		c.stopped[p] = true
	}
	c.mu.Unlock()
}

func (c *Container) signal(pids []int, sig syscall.Signal) {
	c.record(pids)
	c.mu.Lock()
	leader, whole := c.leader, c.wholeGroup
	c.mu.Unlock()
	for _, p := range pids {
		syscall.Kill(p, sig)
	}
	// Without a process table the leader stands for its group.
	if whole && leader > 0 && slices.Contains(pids, leader) {
		syscall.Kill(-leader, sig)
	}
}

// Close releases the container: the leader's registration, and the cgroup
// (removed once empty). Call it after Stop, once the leader was waited for.
func (c *Container) Close() {
	c.mu.Lock()
	leader := c.leader
	c.mu.Unlock()
	if leader > 0 && c.scope.Mechanism == ContainSubreaper {
		unregisterLeader(leader)
		reapAdopted()
	}
	if c.fd != nil {
		c.fd.Close()
	}
	if c.dir != "" {
		removeCgroupTree(c.dir)
	}
}

func (s Scope) describe() string {
	switch {
	case s.Cgroup != "":
		return "cgroup " + s.Cgroup + " (one cgroup per agent, killed whole)"
	case s.Why != "":
		return s.Mechanism + " (" + s.Why + ")"
	}
	return s.Mechanism
}

// containmentFile is where the engine says which mechanism contains its
// agents, for monitor (written once per engine start).
func containmentFile(l state.Layout) string { return filepath.Join(l.RunDir(), "containment.json") }

func writeContainment(l state.Layout, s Scope) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return state.WriteFileAtomic(containmentFile(l), append(data, '\n'), 0o644)
}

// ReadContainment returns the containment the session's (last) engine
// used; ok is false when no engine has recorded one.
// The file is read only when it is a small regular file: a FIFO or device
// put in its place must not hang monitor.
func ReadContainment(l state.Layout) (s Scope, ok bool) {
	data, err := state.ReadRegularFile(containmentFile(l), 64<<10)
	if err != nil || json.Unmarshal(data, &s) != nil || s.Mechanism == "" {
		return Scope{}, false
	}
	return s, true
}
