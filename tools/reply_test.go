package tools_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tools"
)

// TestReplyAnswersAWaitingSession: ask → waiting → reply → ${ANSWER} in
// the next prompt → complete, through the tools and a real engine in tmux;
// a bad answer and a session that is not waiting are calm refusals.
func TestReplyAnswersAWaitingSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	prompts := t.TempDir()
	dir := filepath.Join(e.project, ".claude", "stages", "asker")
	writeFile(t, filepath.Join(dir, "stage.yaml"), commandStage("fixed-n", 2, "status-agent"))
	writeFile(t, filepath.Join(dir, "prompt.md"), "iteration ${ITERATION}; answer: [${ANSWER}]\n")
	e.setEnv("STATUS_DECISION=ask", "STATUS_AT=1", "STATUS_QUESTION=Postgres or SQLite?", `STATUS_OPTIONS=["postgres","sqlite"]`,
		"FAKE_AGENT_PROMPT_DIR="+prompts)
	c := e.connect(modernVersion)
	c.start(map[string]any{"session": "asks", "stage": "asker", "max_cost_usd": 5})
	// A wait returns when the session starts waiting for the user.
	if m := c.monitorWait("asks", "complete", 60); m.Waited == nil || m.Waited.Paused != state.LiveWaiting || m.Question != "Postgres or SQLite?" ||
		len(m.AnswerOptions) != 2 || m.MaxCostUSD != 5 {
		t.Fatalf("monitor wait over a question: %+v", m)
	}
	l := c.list(nil)
	if s, ok := summary(l, "asks"); !ok || s.Status != state.LiveWaiting || s.Question != "Postgres or SQLite?" || s.MaxCostUSD != 5 || l.Counts.Waiting != 1 {
		t.Fatalf("list: %+v (counts %+v)", s, l.Counts)
	}
	if text, err := c.readResource("sessions://reminder"); err != nil || !strings.Contains(text, "Postgres or SQLite?") || !strings.Contains(text, "reply") {
		t.Errorf("the reminder does not put the question: %q, %v", text, err)
	}

	c.fail("reply", map[string]any{"session": "asks", "answer": "  "}, tools.CodeInvalidArgument)
	c.fail("reply", map[string]any{"session": "asks", "answer": "a\x00b"}, tools.CodeInvalidArgument)
	c.fail("reply", map[string]any{"session": "nobody", "answer": "x"}, tools.CodeNotFound)

	var res tools.ReplyResult
	c.ok("reply", map[string]any{"session": "asks", "answer": "postgres, version 16"}, &res)
	if !res.Answered || res.Question != "Postgres or SQLite?" || res.Status != state.LiveRunning || len(res.NextSteps) == 0 {
		t.Fatalf("reply = %+v", res)
	}
	if m := c.monitorWait("asks", "complete", 60); m.Status != state.LiveComplete {
		t.Fatalf("after the answer: %s (%s)", m.Status, m.Why)
	}
	p2, err := readText(filepath.Join(prompts, "prompt-asks-asker-2.txt"))
	if err != nil || !strings.Contains(p2, "answer: [postgres, version 16]") {
		t.Errorf("iteration 2's prompt: %q, %v", p2, err)
	}

	// Not waiting (any more): a calm answer with its status, nothing sent.
	res = tools.ReplyResult{}
	c.ok("reply", map[string]any{"session": "asks", "answer": "again"}, &res)
	if res.Answered || res.Status != state.LiveComplete || !strings.Contains(res.Note, "not waiting") {
		t.Errorf("reply to a complete session = %+v", res)
	}
}

// TestKillWhileWaiting: kill stops a waiting session at once; a reply
// saves the answer for the resume, which goes on with it.
func TestKillWhileWaiting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("asker", commandStage("fixed-n", 2, "status-agent"))
	e.setEnv("STATUS_DECISION=ask", "STATUS_AT=1", "STATUS_QUESTION=go on?")
	c := e.connect(modernVersion)
	c.start(map[string]any{"session": "kw", "stage": "asker"})
	eventually(t, 20*time.Second, "the session waits", func() bool {
		s, ok := summary(c.list(nil), "kw")
		return ok && s.Status == state.LiveWaiting
	})
	// Waiting is alive: a new start of the name is a conflict with a running
	// session, not a resumable one.
	c.fail("start_session", map[string]any{"session": "kw", "stage": "asker"}, tools.CodeConflictRunning)
	var k tools.KillResult
	c.ok("kill", map[string]any{"session": "kw"}, &k)
	if !k.Killed || k.StatusBefore != state.LiveWaiting || k.Status != state.LiveKilled {
		t.Fatalf("kill while waiting = %+v", k)
	}
	var res tools.ReplyResult
	c.ok("reply", map[string]any{"session": "kw", "answer": "yes"}, &res)
	if !res.Answered || !hasOption(res.NextSteps, "start_session", map[string]any{"mode": "resume"}) {
		t.Fatalf("reply to a killed waiting session = %+v", res)
	}
	c.start(map[string]any{"session": "kw", "mode": "resume"})
	if m := c.monitorWait("kw", "complete", 60); m.Status != state.LiveComplete {
		t.Fatalf("resumed: %s (%s)", m.Status, m.Why)
	}
	if st := e.loadState("kw"); st.IterationCompleted != 2 || st.Question != nil {
		t.Errorf("after the resume: %d iterations, question %+v", st.IterationCompleted, st.Question)
	}
}

func readText(path string) (string, error) {
	data, err := os.ReadFile(path)
	return string(data), err
}

// TestKillWhileParked: a parked session is alive (list says parked with
// parked_until); kill stops it at once.
func TestKillWhileParked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stage("slow", commandStage("fixed-n", 2, "echo-agent"))
	host := t.TempDir() // this test's engines only: a park here parks nobody else
	e.setEnv("XDG_STATE_HOME=" + host)
	until := time.Now().Add(time.Hour)
	if err := state.WritePark(filepath.Join(host, "agent-sessions"), state.Park{Provider: "command", Until: until, Reason: "usage_limit", BySession: "other"}); err != nil {
		t.Fatal(err)
	}
	c := e.connect(modernVersion)
	c.start(map[string]any{"session": "kp", "stage": "slow"})
	var s tools.Summary
	eventually(t, 20*time.Second, "the session parks", func() bool {
		var ok bool
		s, ok = summary(c.list(nil), "kp")
		return ok && s.Status == state.LiveParked
	})
	if got, err := time.Parse(time.RFC3339, s.ParkedUntil); err != nil || !got.Equal(until.Truncate(time.Second)) || !strings.Contains(s.ParkedReason, "usage_limit") {
		t.Errorf("list: parked until %q (%v), reason %q", s.ParkedUntil, err, s.ParkedReason)
	}
	var k tools.KillResult
	c.ok("kill", map[string]any{"session": "kp"}, &k)
	if !k.Killed || k.StatusBefore != state.LiveParked || k.Status != state.LiveKilled {
		t.Fatalf("kill while parked = %+v", k)
	}
}
