package remote

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
)

// InstallDir is where install puts the binary when the host has none on
// its PATH and hosts.yaml names no path: relative to the home directory
// there (sftp and the remote shell both start in it).
const InstallDir = ".local/bin"

// safePath is what install writes into an sftp batch file and gives as a
// path there: sftp parses its batch lines with quotes, escapes and globs,
// so anything else is refused rather than escaped.
var safePath = regexp.MustCompile(`^[A-Za-z0-9._/+-]+$`)

// installCheckTimeout bounds the check before an install.
const installCheckTimeout = 30 * time.Second

// InstallResult says what install did.
type InstallResult struct {
	Report     Report // the host as found before
	Target     string // the binary there
	Installed  bool   // false: already current
	Backup     string // the previous binary, kept under this name
	BinaryHint string // set when hosts.yaml must name Target to find it
}

// Install copies exe (this binary, version ours) to h when it is missing
// there or older, after checking that the host's OS and architecture are
// this binary's. The copy is sftp in batch mode — no shell runs on the far
// side: put to a temporary name, chmod, hard link the old binary aside,
// then rename over it (sftp uses the server's posix-rename extension:
// atomic, and a running server keeps its file).
func Install(ctx context.Context, h Host, exe, ours string, force bool, opts Options) (InstallResult, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return InstallResult{}, err
	}
	// An install is a one-off command: its check is not held to the
	// 3 s of a listing.
	res := InstallResult{Report: Check(ctx, h, ours, installCheckTimeout, o)}
	r := res.Report
	if r.Err != nil {
		return res, r.Err
	}
	if err := sameTarget(h, r.OS); err != nil {
		return res, err
	}
	if !force && (r.Compare == "same" || r.Compare == "newer") {
		res.Target = r.Path
		return res, nil
	}
	res.Target, res.BinaryHint = installTarget(h, r.Path)
	if !safePath.MatchString(res.Target) {
		return res, hostErr(h, ErrUnreachable, "cannot install to %q: install copies only to paths of letters, digits and ._/+-; set binary: in hosts.yaml to such a path", res.Target)
	}
	if r.Path != "" {
		res.Backup = res.Target + ".bak-" + time.Now().UTC().Format("20060102T150405Z")
	}
	if err := sftpInstall(ctx, h, exe, res.Target, res.Backup, o); err != nil {
		return res, err
	}
	if err := verifyInstalled(ctx, h, exe, ours, res.Target, res.Backup, o); err != nil {
		return res, err
	}
	res.Installed = true
	return res, nil
}

// verifyInstalled runs the copy there (`<target> version`). One that does
// not answer with our version — a cgo build linked to a newer glibc than
// the host's, or to glibc on a musl host — is taken back: the previous
// binary is renamed back over it, or, when there was none, it is removed
// (it is our copy of exe, which stays here).
func verifyInstalled(ctx context.Context, h Host, exe, ours, target, backup string, o Options) error {
	vctx, cancel := context.WithTimeout(ctx, installCheckTimeout)
	defer cancel()
	a, err := runStep(vctx, h, o, installCheckTimeout, []string{target, "version"})
	if err != nil {
		return err // the host, not the copy: it stays, and the next check tells
	}
	if a.exit == 0 && compareVersions(strings.TrimPrefix(a.line, "agent-sessions "), ours) == "same" {
		return nil
	}
	said := a.stderr
	if said == "" {
		said = fmt.Sprintf("exit status %d, output %q", a.exit, a.line)
	}
	undo, restored := fmt.Sprintf("rm %q\n", target), "nothing of it was left there"
	if backup != "" {
		undo, restored = fmt.Sprintf("rename %q %q\n", backup, target), "the previous binary is back in place"
	}
	if err := sftpBatchRun(ctx, h, undo, o, "%s"); err != nil {
		restored = "taking it back failed too (" + err.Error() + "): fix " + target + " by hand"
	}
	fix := "build one that runs there and install that"
	if dynamicallyLinked(exe) {
		fix = "this binary is linked to this machine's libc (a cgo build): build a static one (CGO_ENABLED=0 go build -o agent-sessions .) and install that"
	}
	return hostErr(h, ErrBinaryMissing, "the copy at %s does not run there (%s); %s; %s", target, said, restored, fix)
}

// dynamicallyLinked reports whether exe is an ELF executable that needs a
// dynamic loader (and so a libc like this machine's).
func dynamicallyLinked(exe string) bool {
	f, err := elf.Open(exe)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

// installTarget is where the binary goes: the one found there, else the
// path hosts.yaml gives, else ~/.local/bin (and hosts.yaml must say so).
func installTarget(h Host, found string) (target, hint string) {
	switch {
	case found != "":
		return found, ""
	case strings.Contains(binaryOf(h), "/"):
		return binaryOf(h), ""
	}
	target = path.Join(InstallDir, DefaultBinary)
	return target, fmt.Sprintf("%s is not on the PATH of a non-interactive ssh login there: set binary: %s for host %s in hosts.yaml", binaryOf(h), target, h.Name)
}

// sameTarget refuses a host whose `uname -s -m` is not this binary's.
func sameTarget(h Host, uname string) error {
	f := strings.Fields(uname)
	if len(f) != 2 {
		return hostErr(h, ErrConnectionLost, "cannot tell the host's OS and architecture (uname -s -m said %q)", uname)
	}
	goos := strings.ToLower(f[0])
	goarch := map[string]string{"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
		"i386": "386", "i686": "386", "armv7l": "arm", "armv6l": "arm", "riscv64": "riscv64", "ppc64le": "ppc64le", "s390x": "s390x"}[f[1]]
	if goos == runtime.GOOS && goarch == runtime.GOARCH {
		return nil
	}
	want := goos + "/" + goarch
	if goarch == "" {
		want = goos + "/" + f[1]
	}
	return hostErr(h, ErrBinaryMissing, "the host runs %s (%s) and this binary is %s/%s: build one for it (GOOS=%s GOARCH=%s go build -o agent-sessions .) and copy it there, then set binary: in hosts.yaml if it is not on the PATH",
		uname, want, runtime.GOOS, runtime.GOARCH, goos, orDash(goarch))
}

// sftpInstall uploads exe to target on h with one sftp batch.
func sftpInstall(ctx context.Context, h Host, exe, target, backup string, o Options) error {
	// sftp globs local paths: it is handed a link of a known-safe name.
	dir, err := os.MkdirTemp("", "agent-sessions-install-")
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer os.RemoveAll(dir)
	local := filepath.Join(dir, "agent-sessions")
	if err := os.Symlink(exe, local); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if !safePath.MatchString(local) {
		return fmt.Errorf("install: the temporary directory %s has characters sftp would misread: set TMPDIR to a plain path", dir)
	}
	return sftpBatchRun(ctx, h, sftpBatch(local, target, backup), o,
		"copying the binary to "+target+" failed: %s (the old binary, if any, is untouched)")
}

// sftpBatchRun runs one sftp batch on h. A failed step ends the batch
// (sftp -b); what ran before it stays done. failed is the message of a
// failed step, with %s for what sftp said.
func sftpBatchRun(ctx context.Context, h Host, batch string, o Options, failed string) error {
	args, err := sftpArgs(h, o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute) // a 20 MB copy over a slow link
	defer cancel()
	cmd := exec.CommandContext(ctx, "sftp", args...)
	cmd.Stdin = strings.NewReader(batch)
	stderr := &tail{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 255 && !strings.Contains(stderr.String(), "sftp>") {
			return classify(h, 255, stderr.String())
		}
		return hostErr(h, ErrConnectionLost, failed, orNothing(lastLine(stderr.String())))
	}
	return nil
}

// sftpBatch is the batch file: each path double-quoted (safePath has no
// quote, backslash or glob character); '-' lets mkdir of an existing
// directory pass.
func sftpBatch(local, target, backup string) string {
	var b strings.Builder
	tmp := target + ".new"
	dirs := []string{}
	for d := path.Dir(target); d != "." && d != "/"; d = path.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		fmt.Fprintf(&b, "-mkdir %q\n", d)
	}
	fmt.Fprintf(&b, "put %q %q\n", local, tmp)
	fmt.Fprintf(&b, "chmod 755 %q\n", tmp)
	if backup != "" {
		fmt.Fprintf(&b, "ln %q %q\n", target, backup)
	}
	fmt.Fprintf(&b, "rename %q %q\n", tmp, target)
	return b.String()
}

// sftpArgs are sftp's arguments reaching h as ssh does: the same
// options (so the same reused connection), with ssh_args translated —
// sftp spells the port -P and has no -l.
func sftpArgs(h Host, o Options) ([]string, error) {
	args := []string{"-b", "-"}
	args = append(args, sshOptions(o.ControlDir, o.ConnectTimeout)...)
	for i := 0; i < len(h.SSHArgs); i++ {
		a := h.SSHArgs[i]
		flag, val := a, ""
		if len(a) > 2 && strings.HasPrefix(a, "-") {
			flag, val = a[:2], a[2:]
		}
		takesValue := strings.Contains("pliFoJ", strings.TrimPrefix(flag, "-")) && len(flag) == 2
		if takesValue && val == "" {
			if i+1 >= len(h.SSHArgs) {
				return nil, hostErr(h, ErrUnreachable, "ssh_args: %s needs a value", flag)
			}
			i++
			val = h.SSHArgs[i]
		}
		switch flag {
		case "-p":
			args = append(args, "-P", val)
		case "-l":
			args = append(args, "-o", "User="+val)
		case "-i", "-F", "-o", "-J":
			args = append(args, flag, val)
		case "-4", "-6", "-C", "-q", "-v":
			args = append(args, flag)
		default:
			return nil, hostErr(h, ErrUnreachable, "ssh_args: %s has no sftp equivalent, so install cannot reach the host the same way: write it as -o Option=value", a)
		}
	}
	return append(args, h.SSH), nil
}
