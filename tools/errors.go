package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agent-sessions/agent-sessions/engine"
	"github.com/agent-sessions/agent-sessions/sessions"
	"github.com/agent-sessions/agent-sessions/tmux"
)

// Error codes (SPEC §10).
const (
	CodeInvalidArgument   = "invalid_argument"
	CodeNotFound          = "not_found"
	CodeConflictRunning   = "conflict_running"
	CodeConflictCrashed   = "conflict_crashed"
	CodeConflictComplete  = "conflict_complete"
	CodeTmuxUnavailable   = "tmux_unavailable"
	CodeAgentUnavailable  = "agent_unavailable"
	CodeDependencyMissing = "dependency_missing"
	CodeNotAllowed        = "not_allowed"
	CodeInternal          = "internal"
)

// Option is a next call that resolves an error.
type Option struct {
	Tool        string         `json:"tool" jsonschema:"tool to call"`
	Arguments   map[string]any `json:"arguments,omitempty" jsonschema:"arguments for that call"`
	Description string         `json:"description" jsonschema:"what the call does"`
}

// ToolError is a problem the caller can fix, returned as a tool result with
// isError set and this structure as its structuredContent.
type ToolError struct {
	Code    string   `json:"code" jsonschema:"error results only: invalid_argument, not_found, conflict_running, conflict_crashed, conflict_complete, tmux_unavailable, agent_unavailable, dependency_missing, not_allowed, host_unreachable or internal"`
	Message string   `json:"message" jsonschema:"error results only: what went wrong"`
	Options []Option `json:"options" jsonschema:"error results only: the next calls that resolve it"`

	cause error // what it came from, for errors.As (not sent)
}

func (e *ToolError) Error() string { return e.Code + ": " + e.Message }
func (e *ToolError) Unwrap() error { return e.cause }

func invalidf(format string, args ...any) *ToolError {
	return &ToolError{Code: CodeInvalidArgument, Message: fmt.Sprintf(format, args...), Options: []Option{}}
}

func (e *ToolError) with(opts ...Option) *ToolError {
	e.Options = append(e.Options, opts...)
	return e
}

// toolError maps any error onto a ToolError: the engine's and tmux's
// sentinels onto their codes, everything else onto internal.
func toolError(err error) *ToolError {
	var te *ToolError
	if errors.As(err, &te) {
		if te.Options == nil {
			te.Options = []Option{}
		}
		return te
	}
	if te := domainError(err); te != nil {
		return te
	}
	msg := cleanMessage(err)
	code := CodeInternal
	switch {
	case errors.Is(err, engine.ErrInvalid):
		code = CodeInvalidArgument
	case errors.Is(err, engine.ErrNotFound):
		code = CodeNotFound
	case errors.Is(err, engine.ErrConflictRunning):
		code = CodeConflictRunning
	case errors.Is(err, engine.ErrConflictComplete):
		code = CodeConflictComplete
	case errors.Is(err, engine.ErrConflictCrashed):
		code = CodeConflictCrashed
	case errors.Is(err, engine.ErrAgentUnavailable):
		code = CodeAgentUnavailable
	case errors.Is(err, engine.ErrDependencyMissing):
		code = CodeDependencyMissing
	case errors.Is(err, tmux.ErrNotInstalled):
		code = CodeTmuxUnavailable
		msg = "tmux is not installed; " + tmux.InstallHint()
	case errors.Is(err, tmux.ErrTimeout):
		code = CodeTmuxUnavailable
		msg = "tmux did not answer, so nothing could be started (its server may be stopped or hung; continue it with `kill -CONT <its pid>` or end it, then retry): " + msg
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		msg = "the call was cancelled: " + msg
	}
	return &ToolError{Code: code, Message: msg, Options: []Option{}}
}

// domainError maps the lifecycle's domain errors (package sessions) onto
// codes and the calls that resolve them; nil for any other error.
// start_session adds options that repeat its own call (startError).
func domainError(err error) *ToolError {
	var (
		kept     *sessions.KeptWorktreeError
		notFound *sessions.NotFoundError
		badName  *sessions.InvalidNameError
		conflict *sessions.ConflictError
		failure  *sessions.StartFailure
		unread   *sessions.UnreadableError
		nested   *sessions.NestedError
		noTmux   *sessions.NoTmuxError
		plan     *sessions.PlanError
	)
	switch {
	case errors.As(err, &kept):
		te := toolError(kept.Err)
		te.Message += fmt.Sprintf(" (its worktree %s was kept: %v)", kept.Dir, kept.Why)
		return te
	case errors.As(err, &notFound):
		if notFound.Resume {
			return (&ToolError{Code: CodeNotFound, Message: notFound.Error()}).
				with(Option{Tool: "list", Arguments: map[string]any{"include_catalog": true}, Description: "see the sessions that exist and what can be started"})
		}
		return (&ToolError{Code: CodeNotFound, Message: notFound.Error()}).
			with(Option{Tool: "list", Arguments: map[string]any{"include_catalog": true}, Description: "see the sessions that exist, and the stages and pipelines a session of this name could run"})
	case errors.As(err, &badName):
		return invalidf("%v", badName.Err).with(Option{Tool: "list", Description: "see the sessions that exist"})
	case errors.As(err, &conflict):
		return conflictError(conflict)
	case errors.As(err, &failure):
		code := CodeInternal
		if failure.Err != nil {
			code = toolError(failure.Err).Code
		}
		return &ToolError{Code: code, Message: failure.Msg, Options: []Option{}, cause: err}
	case errors.As(err, &unread):
		return (&ToolError{Code: CodeInternal, Message: unread.Error(), cause: err}).
			with(Option{Tool: "monitor", Arguments: map[string]any{"session": unread.Session}, Description: "look at what is left of it"})
	case errors.As(err, &nested):
		return &ToolError{Code: CodeNotAllowed, Message: nested.Error(), Options: []Option{}}
	case errors.As(err, &noTmux):
		return &ToolError{Code: CodeTmuxUnavailable, Message: noTmux.Error(), Options: []Option{}}
	case errors.As(err, &plan):
		return toolError(plan.Err)
	}
	return nil
}

// conflictError is a conflict's code and the calls that resolve it, as far
// as they follow from the conflict alone (start_session adds the ones that
// repeat its call).
func conflictError(c *sessions.ConflictError) *ToolError {
	te := &ToolError{Code: CodeConflictRunning, Message: c.Error(), Options: []Option{}, cause: c}
	look := Option{Tool: "monitor", Arguments: map[string]any{"session": c.Session}, Description: "look at it"}
	switch c.Reason {
	case sessions.ConflictComplete:
		te.Code = CodeConflictComplete
	case sessions.ConflictResumable:
		te.Code = CodeConflictCrashed
	case sessions.ConflictNothingToResume:
		te.with(look)
	case sessions.ConflictResumeComplete:
		te.Code = CodeConflictComplete
		args := map[string]any{"session": c.Session, "mode": engine.ModeForce}
		if c.Stage != "" {
			args["stage"] = c.Stage
		} else if c.Pipeline != "" {
			args["pipeline"] = c.Pipeline
		}
		te.with(Option{Tool: "start_session", Arguments: args, Description: "start it over (the old run is moved aside)"})
	case sessions.ConflictTmuxTaken:
		te.with(Option{Tool: "monitor", Arguments: map[string]any{"session": c.Session}, Description: "look at the session that is running"},
			Option{Tool: "list", Description: "see every session"})
	}
	return te
}

// cleanMessage drops the sentinel's own text from a wrapped message
// ("invalid argument: …") — the code already says it.
func cleanMessage(err error) string {
	msg := err.Error()
	if ps, ok := engine.AsProblems(err); ok {
		return fmt.Sprintf("the definition has %d problem(s): %s", len(ps), strings.ReplaceAll(ps.Error(), "\n", "; "))
	}
	for _, s := range []error{engine.ErrInvalid, engine.ErrNotFound, engine.ErrConflictRunning, engine.ErrConflictComplete,
		engine.ErrConflictCrashed, engine.ErrAgentUnavailable, engine.ErrDependencyMissing} {
		if rest, ok := strings.CutPrefix(msg, s.Error()+": "); ok {
			return rest
		}
	}
	return msg
}

// errorResult is the tool result of an error.
func errorResult(err error) *mcp.CallToolResult {
	te := toolError(err)
	var b strings.Builder
	fmt.Fprintf(&b, "Error (%s): %s", te.Code, te.Message)
	for _, o := range te.Options {
		args := ""
		if len(o.Arguments) > 0 {
			args = " " + compactJSON(o.Arguments)
		}
		fmt.Fprintf(&b, "\n- option: %s%s — %s", o.Tool, args, o.Description)
	}
	res := mcp.NewToolResultStructured(te, sessions.BoundText(b.String(), TextLimit))
	res.IsError = true
	return res
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
