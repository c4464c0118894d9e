package sessions

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
	"github.com/agent-sessions/agent-sessions/state"
	"github.com/agent-sessions/agent-sessions/tmux"
)

// listedTmux is a tmux that lists the sessions it was given and does
// nothing else: enough for what reads sessions without starting any.
type listedTmux struct{ list []tmux.Session }

func (t listedTmux) Available() error { return nil }
func (t listedTmux) Socket() string   { return "" }
func (t listedTmux) ListSessions(context.Context) ([]tmux.Session, error) {
	return t.list, nil
}
func (t listedTmux) HasSession(context.Context, string) (bool, error) { return false, nil }
func (t listedTmux) NewSession(context.Context, tmux.NewSessionOptions) error {
	return errors.New("listedTmux starts nothing")
}
func (t listedTmux) CapturePane(context.Context, string, int) (string, error) {
	return "", tmux.ErrSessionNotFound
}
func (t listedTmux) KillSession(context.Context, string) error { return tmux.ErrSessionNotFound }
func (t listedTmux) AttachCommand(name string, _ bool) []string {
	return []string{"tmux", "attach", "-t", "=" + name}
}
func (t listedTmux) SwitchCommand(name string) []string {
	return []string{"tmux", "switch-client", "-t", "=" + name}
}

// writeFile is testkit.WriteFile: content written, its directory made.
var writeFile = testkit.WriteFile

// TestFindAndDiscover: sessions are found by their files and their tmux
// sessions, classified, and ordered by rank; a name with nothing behind it
// is a NotFoundError naming the project.
func TestFindAndDiscover(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	writeFile(t, state.NewLayout(project, "ghost").LockFile(), `{"session":"ghost","pid":1}`)
	l := &Local{Settings{Tmux: listedTmux{list: []tmux.Session{{Name: "loop-orph", Path: project, Created: time.Now().Add(-time.Hour)}}}, ProjectDir: project}}

	infos, warnings := l.Discover(context.Background(), project, Summary)
	var got []string
	for _, i := range infos {
		got = append(got, i.Name+"="+string(i.Live.Status))
	}
	if strings.Join(got, ",") != "orph=orphan,ghost=" || len(warnings) != 0 {
		t.Errorf("Discover = %v (warnings %v), want the orphan, then the stale lock", got, warnings)
	}
	if !infos[1].Live.StaleLock || !infos[1].Lock.Exists {
		t.Errorf("ghost: %+v, want a stale lock", infos[1].Live)
	}

	_, err := l.Find(context.Background(), "nothing", "")
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Session != "nothing" || nf.ProjectDir != project {
		t.Errorf("Find(nothing) = %v, want a NotFoundError in %s", err, project)
	}
	var bad *InvalidNameError
	if _, err := l.Find(context.Background(), "../x", ""); !errors.As(err, &bad) {
		t.Errorf("Find(../x) = %v, want an InvalidNameError", err)
	}
	if info, err := l.Find(context.Background(), "orph", ""); err != nil || info.Tmux == nil || info.TmuxName() != "loop-orph" {
		t.Errorf("Find(orph) = %+v, %v", info, err)
	}
}

// TestArchiveAndStaleLock: a finished run is moved aside, never deleted,
// and a lock no process holds is removed with a word on what became of it.
func TestArchiveAndStaleLock(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	lay := state.NewLayout(project, "old")
	writeFile(t, filepath.Join(lay.RunDir(), "session.log"), "the transcript\n")
	writeFile(t, lay.LockFile(), `{"session":"old","pid":1}`)
	l := &Local{Settings{Tmux: listedTmux{}, ProjectDir: project}}
	msg, err := l.Archive(Info{Name: "old", ProjectDir: project, Layout: lay})
	if err != nil || !strings.Contains(msg, ArchiveDir) || !strings.Contains(msg, "removed its stale lock") {
		t.Fatalf("Archive = %q, %v", msg, err)
	}
	kept, _ := filepath.Glob(filepath.Join(state.RunsDir(project), ArchiveDir, "old.*", "session.log"))
	if len(kept) != 1 {
		t.Errorf("archived transcript: %v, want one", kept)
	}
	if msg, err := l.RemoveStaleLock(lay.LockFile()); err != nil || !strings.Contains(msg, "already gone") {
		t.Errorf("RemoveStaleLock of a removed lock = %q, %v", msg, err)
	}
}

// TestReadSessionFiles: the log's and progress file's ends, and the
// default glance of recent output.
func TestReadSessionFiles(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	lay := state.NewLayout(project, "r")
	var log strings.Builder
	for i := range 40 {
		log.WriteString("line " + string(rune('a'+i%26)) + "\n")
	}
	writeFile(t, lay.LogFile(), log.String())
	l := &Local{Settings{Tmux: listedTmux{}, ProjectDir: project}}
	info := Info{Name: "r", ProjectDir: project, Layout: lay, HasRunDir: true}
	if text, err := l.ReadLog(info, 3); err != nil || strings.Count(text, "\n") != 2 {
		t.Errorf("ReadLog(3) = %q, %v", text, err)
	}
	v := l.Look(context.Background(), info, 0)
	if v.OutputSource != "session.log" || strings.Count(v.RecentOutput, "\n") != defaultLines-1 {
		t.Errorf("Look: %s, %d lines", v.OutputSource, strings.Count(v.RecentOutput, "\n")+1)
	}
	if _, _, err := l.ReadProgress(info); err == nil {
		t.Errorf("ReadProgress of a session without a progress file: no error")
	}
}

// TestWaitMark: a wait's tick reads a session again unless the same
// engine held its lock at both looks and the same state.json was in
// place; a replacement with identical bytes counts as a change.
func TestWaitMark(t *testing.T) {
	l := state.NewLayout(t.TempDir(), "wm")
	replace := func(content string) {
		t.Helper()
		tmp := l.StateFile() + ".tmp"
		writeFile(t, tmp, content)
		if err := os.Rename(tmp, l.StateFile()); err != nil {
			t.Fatal(err)
		}
	}
	free := markOf(l)
	if free.same(free) {
		t.Error("a mark with no engine holding the lock counted as unchanged")
	}
	lock, err := state.AcquireLock(t.Context(), l.LockFile(), "wm", time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	starting := markOf(l)
	if !starting.held || starting.pid != os.Getpid() || starting.file != nil {
		t.Fatalf("mark of a held lock and no state.json = %+v", starting)
	}
	if !starting.same(markOf(l)) {
		t.Error("two looks at a starting engine with nothing written differ")
	}
	replace(`{"session":"wm"}`)
	a := markOf(l)
	if a.same(starting) {
		t.Error("state.json appearing counted as unchanged")
	}
	if !a.same(markOf(l)) {
		t.Error("two looks at the same state.json differ")
	}
	replace(`{"session":"wm"}`)
	if a.same(markOf(l)) {
		t.Error("a replaced state.json (same bytes) counted as unchanged")
	}
	other := a
	other.pid++
	if a.same(other) {
		t.Error("another engine counted as the same")
	}
}
