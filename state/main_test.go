package state

import (
	"os"
	"testing"

	"github.com/agent-sessions/agent-sessions/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }
