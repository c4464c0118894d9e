package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// AnswerFile is answer.json in a run directory: the reply tool writes the
// user's answer there (atomically) and the waiting engine reads it, records
// it and removes it. It names the question it answers, so an answer to an
// earlier question is never taken for the current one.
type AnswerFile struct {
	StageIndex int       `json:"stage_index"`
	Iteration  int       `json:"iteration"`
	Answer     string    `json:"answer"`
	AnsweredAt time.Time `json:"answered_at"`
}

// AnswerLimit bounds an answer (and answer.json).
const AnswerLimit = 64 << 10

// AnswerPath is the run directory's answer.json.
func (l Layout) AnswerPath() string { return filepath.Join(l.RunDir(), "answer.json") }

// WriteAnswer replaces answer.json with a. The run directory must exist:
// an answer to a session whose files are gone has nowhere to go.
func WriteAnswer(l Layout, a AnswerFile) error {
	if _, err := os.Stat(l.RunDir()); err != nil {
		return fmt.Errorf("run directory of %s: %w", l.Session, err)
	}
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	return writeFileAtomic(l.AnswerPath(), append(data, '\n'), 0o644, false, true)
}

// ReadAnswer reads answer.json; ok is false when there is none.
func ReadAnswer(l Layout) (a AnswerFile, ok bool, err error) {
	data, err := ReadRegularFile(l.AnswerPath(), AnswerLimit+4096)
	if errors.Is(err, fs.ErrNotExist) {
		return AnswerFile{}, false, nil
	}
	if err != nil {
		return AnswerFile{}, false, err
	}
	if err := json.Unmarshal(data, &a); err != nil {
		return AnswerFile{}, false, fmt.Errorf("%s is not valid JSON: %w", l.AnswerPath(), err)
	}
	return a, true, nil
}
