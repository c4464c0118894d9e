package state

// Commit is one commit an iteration made.
type Commit struct {
	SHA     string `json:"sha"`
	Subject string `json:"subject"`
}

// Changes is the change record of one iteration in a git project (SPEC §16):
// what HEAD was before and after the agent ran, the commits between them,
// and the diffstat from HEAD-before to the working tree (committed and
// uncommitted work alike, untracked files counted as changed files).
type Changes struct {
	HeadBefore string   `json:"head_before"` // "" on an unborn branch
	HeadAfter  string   `json:"head_after"`
	Commits    []Commit `json:"commits"` // newest first, at most CommitsListed
	// CommitCount is how many commits head_before..head_after holds; Commits
	// lists at most the first CommitsListed of them.
	CommitCount  int  `json:"commit_count"`
	FilesChanged int  `json:"files_changed"`
	Insertions   int  `json:"insertions"`
	Deletions    int  `json:"deletions"`
	Untracked    int  `json:"untracked,omitempty"` // of FilesChanged, files git does not track yet
	Dirty        bool `json:"dirty"`               // uncommitted changes exist
	// Note says what could not be measured (a git failure or timeout); the
	// figures are then what was measured before it.
	Note string `json:"note,omitempty"`
}

// CommitsListed bounds Changes.Commits.
const CommitsListed = 50

// ChangeTotals sums a session's change records (state.json's `changes`).
type ChangeTotals struct {
	Commits    int    `json:"commits"`
	HeadStart  string `json:"head_start"` // HEAD before the session's first recorded iteration
	Head       string `json:"head"`       // HEAD after the last one
	Iterations int    `json:"iterations"` // iterations with a change record
	Dirty      bool   `json:"dirty"`      // the last iteration left uncommitted changes
}

// addChanges folds an iteration's change record into the session's totals
// and keeps a compact copy in the history: state.json is rewritten twice
// per iteration, so it holds counts, while events.jsonl and result.json
// keep the commit list.
func (st *State) addChanges(h *HistoryEntry) {
	c := h.Changes
	if c == nil {
		return
	}
	// A new value, never an update in place: clones of the state handed
	// to other goroutines share the old pointer.
	t := ChangeTotals{HeadStart: c.HeadBefore}
	if st.Changes != nil {
		t = *st.Changes
	}
	t.Commits += c.CommitCount
	t.Head = c.HeadAfter
	t.Iterations++
	t.Dirty = c.Dirty
	st.Changes = &t
	compact := *c
	compact.Commits = nil
	h.Changes = &compact
}
