package tools

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agent-sessions/agent-sessions/state"
)

// ReplyArgs are reply's arguments.
type ReplyArgs struct {
	Session    string `json:"session" jsonschema:"the session waiting for an answer (list and monitor show its question)"`
	Answer     string `json:"answer" jsonschema:"the user's answer, in the user's words; ask the user, never make one up"`
	ProjectDir string `json:"project_dir,omitempty" jsonschema:"project of the session (default: the server's, else where its tmux session runs)"`
}

// ReplyResult is reply's result.
type ReplyResult struct {
	Session   string       `json:"session" jsonschema:"session name"`
	Answered  bool         `json:"answered" jsonschema:"the answer was handed to the session; false when it was not waiting for one"`
	Status    state.Status `json:"status" jsonschema:"the session's status"`
	Question  string       `json:"question,omitempty" jsonschema:"the question that was answered"`
	Note      string       `json:"note" jsonschema:"what happens next"`
	NextSteps []Option     `json:"next_steps" jsonschema:"calls to make next, with complete arguments"`
}

// Reply is the reply tool (SPEC §15): it answers a session's question.
func Reply(d *Deps) server.ServerTool {
	tool := mcp.NewTool("reply",
		mcp.WithToolTitle("Answer a waiting session"),
		mcp.WithDescription("Answer the question of a session whose status is waiting (an agent asked the user something; no agent runs until it is answered). Give the user's own answer: ask the user first, never invent one. The next iteration receives it as ${ANSWER} and the progress file records question and answer. A session that is not waiting is told nothing; the result says its status."),
		inputSchema[ReplyArgs](nil),
		outputSchema[ReplyResult](),
		annotations("Answer a waiting session", false, false, false, false),
	)
	return server.ServerTool{Tool: tool, Handler: typed(d.reply)}
}

func (d *Deps) reply(ctx context.Context, _ mcp.CallToolRequest, a ReplyArgs) (ReplyResult, string, error) {
	if err := checkAnswer(a.Answer); err != nil {
		return ReplyResult{}, "", err.with(Option{Tool: "monitor", Arguments: map[string]any{"session": a.Session}, Description: "read the question again"})
	}
	info, err := d.resolve(ctx, a.Session, a.ProjectDir)
	if err != nil {
		return ReplyResult{}, "", err
	}
	res := ReplyResult{Session: a.Session, Status: info.Live.Status, NextSteps: []Option{}}
	monitor := Option{Tool: "monitor", Arguments: map[string]any{"session": a.Session}, Description: "see how it goes on"}
	if info.Live.Status == "" {
		return ReplyResult{}, "", (&ToolError{Code: CodeNotFound, Message: fmt.Sprintf("no session %s in %s", a.Session, info.ProjectDir)}).
			with(Option{Tool: "list", Description: "see the sessions that exist"})
	}
	if info.State == nil || info.State.Question == nil {
		res.Note = fmt.Sprintf("session %s is %s, not waiting for an answer; nothing was sent", a.Session, info.Live.Status)
		res.NextSteps = append(res.NextSteps, monitor)
		return res, res.Note, nil
	}
	q := info.State.Question
	status, err := d.host().Answer(ctx, info, a.Answer)
	if err != nil {
		return ReplyResult{}, "", toolError(err)
	}
	res.Answered, res.Question = true, q.Question
	if info.Live.Status.Alive() {
		res.Status = status
		res.Note = fmt.Sprintf("answered; session %s goes on with iteration %d, which receives the answer as ${ANSWER}", a.Session, q.Iteration+1)
		monitor.Arguments["wait"] = "iteration"
		res.NextSteps = append(res.NextSteps, monitor)
	} else {
		// Its engine is gone (killed or crashed while waiting): the answer
		// waits in its run directory for the resume.
		res.Note = fmt.Sprintf("answer saved; session %s is %s, so nothing runs until it is resumed, then iteration %d receives it", a.Session, info.Live.Status, q.Iteration+1)
		res.NextSteps = append(res.NextSteps, Option{Tool: "start_session", Arguments: map[string]any{"session": a.Session, "mode": "resume"}, Description: "resume it"})
	}
	return res, res.Note, nil
}

// checkAnswer refuses an answer that cannot be one: empty, a NUL byte
// (prompts are C strings to agent CLIs), invalid UTF-8 or too long.
func checkAnswer(answer string) *ToolError {
	switch {
	case strings.TrimSpace(answer) == "":
		return invalidf("answer is empty; ask the user for their answer and pass it as answer")
	case strings.IndexByte(answer, 0) >= 0:
		return invalidf("answer contains a NUL byte, which no prompt can carry; remove it")
	case !utf8.ValidString(answer):
		return invalidf("answer is not valid UTF-8")
	case len(answer) > state.AnswerLimit:
		return invalidf("answer is %d bytes; at most %d fit (put longer material in a file in the project and answer with its path)", len(answer), state.AnswerLimit)
	}
	return nil
}
