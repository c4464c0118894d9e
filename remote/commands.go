package remote

import (
	"context"
	"fmt"
	"io"
	"time"
)

// What `agent-sessions hosts` and `agent-sessions install --host` do once
// their flags are read: the check of the configured hosts, and the words
// an install leaves a person with.

// CheckHosts checks the hosts named (every configured one when names is
// empty), each within timeout, and writes the table to out. ok is false
// when a host is not ready; an error is a name cfg does not have. The
// client's version (opts.ClientVersion) is what the hosts are compared to.
func CheckHosts(ctx context.Context, out io.Writer, cfg *Config, names []string, timeout time.Duration, opts Options) (ok bool, err error) {
	hosts := cfg.Hosts
	if len(names) > 0 {
		hosts = nil
		for _, name := range names {
			h, err := cfg.Lookup(name)
			if err != nil {
				return false, err
			}
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		path, _ := ConfigPath()
		fmt.Fprintf(out, "no hosts configured: sessions run on this machine only.\nTo add one, write %s:\n  hosts:\n    - name: build\n      ssh: me@build-box\n", path)
		return true, nil
	}
	ours := opts.ClientVersion
	reports := CheckAll(ctx, hosts, ours, timeout, opts)
	WriteReports(out, ours, reports)
	for _, r := range reports {
		if !r.OK() {
			return false, nil
		}
	}
	return true, nil
}

// Describe tells out what Install did on h; ours is this binary's version.
func (r InstallResult) Describe(out io.Writer, h Host, ours string) {
	if !r.Installed {
		fmt.Fprintf(out, "host %s: %s is %s (%s), nothing to do (--force copies anyway)\n", h.Name, r.Target, r.Report.Version, r.Report.Compare)
	} else {
		fmt.Fprintf(out, "host %s: installed agent-sessions %s as %s\n", h.Name, ours, r.Target)
		if r.Backup != "" {
			fmt.Fprintf(out, "host %s: the previous binary (%s) is kept as %s\n", h.Name, r.Report.Version, r.Backup)
		}
	}
	if r.BinaryHint != "" {
		fmt.Fprintf(out, "host %s: %s\n", h.Name, r.BinaryHint)
	}
	fmt.Fprintf(out, "check it with: agent-sessions hosts %s\n", h.Name)
}
