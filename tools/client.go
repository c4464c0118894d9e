package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// localClient is an in-process MCP client of a server built by NewServer:
// the debug mode and the demo drive the very handlers Claude Code does,
// through the protocol, with no copy of any of them.
type localClient struct {
	c *client.Client
}

// newLocalClient starts an in-process client of srv and initializes it.
// notify, when set, receives every notification (progress, updates).
func newLocalClient(ctx context.Context, srv *server.MCPServer, notify func(mcp.JSONRPCNotification)) (*localClient, error) {
	c, err := client.NewInProcessClient(srv)
	if err != nil {
		return nil, err
	}
	if notify != nil {
		c.OnNotification(notify)
	}
	// Start must come before Initialize, or no notification is delivered.
	if err := c.Start(ctx); err != nil {
		return nil, fmt.Errorf("start in-process client: %w", err)
	}
	var req mcp.InitializeRequest
	req.Params.ClientInfo = mcp.Implementation{Name: "agent-sessions-local", Version: "1"}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	if _, err := c.Initialize(ctx, req); err != nil {
		c.Close()
		return nil, fmt.Errorf("initialize in-process client: %w", err)
	}
	return &localClient{c: c}, nil
}

func (l *localClient) Close() error { return l.c.Close() }

// call calls a tool. It returns the structured content as JSON, and
// whether the result is an error.
func (l *localClient) call(ctx context.Context, name string, args map[string]any, progressToken any) (json.RawMessage, string, bool, error) {
	var req mcp.CallToolRequest
	req.Params.Name = name
	req.Params.Arguments = args
	if progressToken != nil {
		req.Params.Meta = &mcp.Meta{ProgressToken: progressToken}
	}
	res, err := l.c.CallTool(ctx, req)
	if err != nil {
		return nil, "", false, err
	}
	text := ""
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			text += tc.Text
		}
	}
	var structured json.RawMessage
	if res.StructuredContent != nil {
		structured, err = json.Marshal(res.StructuredContent)
		if err != nil {
			return nil, "", false, err
		}
	}
	return structured, text, res.IsError, nil
}

// callInto calls a tool and decodes its structured result into out; a tool
// error becomes a Go error carrying the tool's message.
func (l *localClient) callInto(ctx context.Context, name string, args map[string]any, out any) (string, error) {
	raw, text, isErr, err := l.call(ctx, name, args, nil)
	if err != nil {
		return "", err
	}
	if isErr {
		return text, errors.New(text)
	}
	if out != nil && raw != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return text, fmt.Errorf("decode %s result: %w", name, err)
		}
	}
	return text, nil
}
