package state

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// Host-wide state (SPEC §15) lives outside any project: every engine on this
// machine, whatever project it runs in, must see the same provider parks and
// the same day's spend.

// HostDir is $XDG_STATE_HOME/agent-sessions, by default
// ~/.local/state/agent-sessions. It is not created here.
func HostDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "agent-sessions"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("host state directory: set XDG_STATE_HOME or HOME: %w", err)
	}
	return filepath.Join(home, ".local", "state", "agent-sessions"), nil
}

// Park is a provider's host-wide park: until when no engine on this host
// should start an agent of that provider, and why.
type Park struct {
	Provider  string    `json:"provider"`
	Until     time.Time `json:"until"`
	Reason    string    `json:"reason"`
	BySession string    `json:"by_session"`
	// ProjectDir is where the session that parked runs, for people reading
	// the file.
	ProjectDir string    `json:"project_dir,omitempty"`
	Since      time.Time `json:"since"`
}

// providerName keeps a provider name usable as a file name: lowercase
// letters, digits, '.', '_' and '-', starting with a letter or digit, at
// most 64 characters.
func providerName(provider string) bool {
	return MatchName(provider, 64, LowerDigits, LowerDigits+"._-")
}

func parkFile(dir, provider string) (string, error) {
	if !providerName(provider) {
		return "", fmt.Errorf("provider %q cannot name a park file", provider)
	}
	return filepath.Join(dir, "parks", provider+".json"), nil
}

// WritePark records a host-wide park of p.Provider under dir (HostDir). A
// park in force that lasts longer is kept: two engines hitting the same
// wall never shorten each other's wait. The file is replaced atomically
// under an flock, so readers need no lock.
func WritePark(dir string, p Park) error {
	path, err := parkFile(dir, p.Provider)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	fl := flock.New(path+".lock", flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o644))
	if err := fl.Lock(); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	defer fl.Close()
	if old, err := readPark(path); err == nil && old.Until.After(p.Until) {
		return nil
	}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode park: %w", err)
	}
	return WriteFileAtomic(path, append(data, '\n'), 0o644)
}

// ParkActive returns the host-wide park of provider in force at now, if any.
// A missing, expired or unreadable park file means no park: a damaged file
// must not stop every session on the host.
func ParkActive(dir, provider string, now time.Time) (Park, bool) {
	path, err := parkFile(dir, provider)
	if err != nil {
		return Park{}, false
	}
	p, err := readPark(path)
	if err != nil || !p.Until.After(now) {
		return Park{}, false
	}
	return p, true
}

func readPark(path string) (Park, error) {
	data, err := ReadRegularFile(path, 64<<10)
	if err != nil {
		return Park{}, err
	}
	var p Park
	if err := json.Unmarshal(data, &p); err != nil {
		return Park{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// SpendEntry is one line of a day's spend ledger.
type SpendEntry struct {
	TS         time.Time `json:"ts"`
	Session    string    `json:"session"`
	ProjectDir string    `json:"project_dir"`
	USD        float64   `json:"usd"`
}

// spendFile is the ledger of the local date of t: the daily budget is a
// person's day, so it turns at local midnight.
func spendFile(dir string, t time.Time) string {
	return filepath.Join(dir, "spend", t.Local().Format("2006-01-02")+".jsonl")
}

// AddSpend appends e to the ledger of e.TS's local date: one line, written
// under an flock and fsynced, so concurrent engines never interleave and a
// crash loses at most the line being written.
func AddSpend(dir string, e SpendEntry) error {
	if e.USD <= 0 || math.IsNaN(e.USD) || math.IsInf(e.USD, 0) {
		return nil
	}
	path := spendFile(dir, e.TS)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	fl := flock.New(path+".lock", flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o644))
	if err := fl.Lock(); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	defer fl.Close()
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode spend: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("append %s: %w", path, err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("append %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// SpendOn sums the ledger of now's local date. Lines that do not parse (a
// torn last line) are skipped; no ledger means nothing was spent.
func SpendOn(dir string, now time.Time) (float64, error) {
	data, err := ReadRegularFile(spendFile(dir, now), 64<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	total := 0.0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e SpendEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.USD > 0 && !math.IsInf(e.USD, 0) {
			total += e.USD
		}
	}
	return total, nil
}

// NextLocalDay is the local midnight after t, when a daily budget resets.
func NextLocalDay(t time.Time) time.Time {
	l := t.Local()
	return time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, l.Location())
}
