package tools

import (
	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/state"
)

// monitorCommits bounds the commits monitor lists of the last iteration
// (result.json keeps up to state.CommitsListed), each with a short sha and
// subject: monitor's answer stays within its budget.
const (
	monitorCommits = 3
	monitorSHA     = 12
	monitorSubject = 100
)

// ChangesSummary is what a session's agents changed in its git project.
type ChangesSummary struct {
	Commits   int            `json:"commits" jsonschema:"commits the session's iterations made so far"`
	HeadStart string         `json:"head_start,omitempty" jsonschema:"HEAD before the first iteration (short sha)"`
	Head      string         `json:"head,omitempty" jsonschema:"HEAD after the last iteration (short sha)"`
	Dirty     bool           `json:"dirty" jsonschema:"the last iteration left uncommitted changes"`
	Last      *state.Changes `json:"last,omitempty" jsonschema:"the last iteration's change record: its first 3 commits (commit_count counts all), shas shortened"`
}

// changesSummary is monitor's changes field: the session's totals and the
// last iteration's record, nil when the project is no git repository.
func changesSummary(st *state.State, lastResult *state.Changes) *ChangesSummary {
	if st.Changes == nil {
		return nil
	}
	cs := &ChangesSummary{Commits: st.Changes.Commits, HeadStart: shortSHA(st.Changes.HeadStart), Head: shortSHA(st.Changes.Head), Dirty: st.Changes.Dirty}
	if n := len(st.History); n > 0 && st.History[n-1].Changes != nil {
		last := *st.History[n-1].Changes // counts only: state.json keeps no commit list
		if lastResult != nil {
			last = *lastResult
		}
		last.Commits = shortCommits(last.Commits)
		last.HeadBefore, last.HeadAfter = shortSHA(last.HeadBefore), shortSHA(last.HeadAfter)
		cs.Last = &last
	}
	return cs
}

func shortCommits(in []state.Commit) []state.Commit {
	out := []state.Commit{}
	for _, c := range in[:min(len(in), monitorCommits)] {
		out = append(out, state.Commit{SHA: shortSHA(c.SHA), Subject: sessions.Truncate(c.Subject, monitorSubject)})
	}
	return out
}

// shortSHA is a commit id as monitor shows it: enough for git to resolve.
func shortSHA(sha string) string { return sha[:min(len(sha), monitorSHA)] }

// commitCount is list's commits field: nil outside a git project.
func commitCount(st *state.State) *int {
	if st.Changes == nil {
		return nil
	}
	n := st.Changes.Commits
	return &n
}
