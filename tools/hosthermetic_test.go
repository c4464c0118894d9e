package tools

import "os"

// init keeps every test of this package, and every engine it starts, off
// the user's config.yaml and host-wide state (provider parks, the daily
// spend ledger): both are redirected to a directory of this test process.
func init() {
	dir, err := os.MkdirTemp("", "agent-sessions-test-host-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", dir+"/config")
	os.Setenv("XDG_STATE_HOME", dir+"/state")
}
