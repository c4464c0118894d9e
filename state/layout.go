package state

import (
	"fmt"
	"path/filepath"
)

// Layout names every path of one session under its project directory
// (SPEC §5). It does no I/O.
type Layout struct {
	ProjectDir string
	Session    string
}

// NewLayout returns the layout of session under projectDir.
func NewLayout(projectDir, session string) Layout {
	return Layout{ProjectDir: projectDir, Session: session}
}

// RunsDir is the directory holding every session's run directory.
func RunsDir(projectDir string) string {
	return filepath.Join(projectDir, ".claude", "pipeline-runs")
}

// LocksDir is the directory holding every session's lock file.
func LocksDir(projectDir string) string {
	return filepath.Join(projectDir, ".claude", "locks")
}

// RunDir is .claude/pipeline-runs/<session>.
func (l Layout) RunDir() string { return filepath.Join(RunsDir(l.ProjectDir), l.Session) }

// StateFile is the run directory's state.json.
func (l Layout) StateFile() string { return filepath.Join(l.RunDir(), "state.json") }

// EventsFile is the run directory's append-only events.jsonl.
func (l Layout) EventsFile() string { return filepath.Join(l.RunDir(), "events.jsonl") }

// LogFile is session.log, everything the engine printed.
func (l Layout) LogFile() string { return filepath.Join(l.RunDir(), "session.log") }

// ProgressFile is progress-<session>.md, the accumulated context of a
// single-stage session.
func (l Layout) ProgressFile() string {
	return filepath.Join(l.RunDir(), "progress-"+l.Session+".md")
}

// PipelineCopy is the copy of the pipeline definition that ran.
func (l Layout) PipelineCopy() string { return filepath.Join(l.RunDir(), "pipeline.yaml") }

// FinalOutput is where kill saves the last screen.
func (l Layout) FinalOutput() string { return filepath.Join(l.RunDir(), "final-output.txt") }

// ReserveFile is the space the engine keeps in reserve while it runs, so
// that a full disk still lets it record why the session stopped (see
// Store). It is removed when the engine ends.
func (l Layout) ReserveFile() string { return filepath.Join(l.RunDir(), ".space-reserve") }

// LockFile is .claude/locks/<session>.lock.
func (l Layout) LockFile() string { return filepath.Join(LocksDir(l.ProjectDir), l.Session+".lock") }

// StageDir is stage-<NN>-<name>, NN the 1-based stage number on two digits.
func (l Layout) StageDir(stageIndex int, name string) string {
	return filepath.Join(l.RunDir(), fmt.Sprintf("stage-%02d-%s", stageIndex+1, name))
}

// StageProgressFile is a multi-stage session's per-stage progress.md.
func (l Layout) StageProgressFile(stageIndex int, name string) string {
	return filepath.Join(l.StageDir(stageIndex, name), "progress.md")
}

// Progress is THE rule for where a stage's progress file lives, and every
// reader and writer asks it: a session of one stage — a loop, or a pipeline
// of one stage — keeps progress-<session>.md; each stage of a multi-stage
// session keeps its own progress.md. The session's type does not decide it
// (a one-stage pipeline was once looked for where no engine writes).
func (l Layout) Progress(stageCount, stageIndex int, stageName string) string {
	if stageCount > 1 {
		return l.StageProgressFile(stageIndex, stageName)
	}
	return l.ProgressFile()
}

// ProgressOf is the current stage's progress file of a session in state st.
func (l Layout) ProgressOf(st *State) string {
	if st == nil || st.CurrentStage >= len(st.Stages) {
		return l.ProgressFile()
	}
	return l.Progress(len(st.Stages), st.CurrentStage, st.Stages[st.CurrentStage].Name)
}

// IterationDir is iterations/<NNN> of a stage, NNN the 1-based iteration on
// three digits (more digits past 999).
func (l Layout) IterationDir(stageIndex int, name string, iteration int) string {
	return filepath.Join(l.StageDir(stageIndex, name), "iterations", fmt.Sprintf("%03d", iteration))
}

// IterationFiles names the files of one iteration.
type IterationFiles struct {
	Dir, Prompt, Output, Status, Result string
}

// Iteration returns the files of one iteration.
func (l Layout) Iteration(stageIndex int, name string, iteration int) IterationFiles {
	dir := l.IterationDir(stageIndex, name, iteration)
	return IterationFiles{
		Dir:    dir,
		Prompt: filepath.Join(dir, "prompt.md"),
		Output: filepath.Join(dir, "output.md"),
		Status: filepath.Join(dir, "status.json"),
		Result: filepath.Join(dir, "result.json"),
	}
}
