package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LintResult is what lint checked and found.
type LintResult struct {
	Checked  []string `json:"checked"`
	Problems Problems `json:"problems"`
}

// Lint validates stages and pipelines: every one the catalog finds, or the
// named ones (names, stage directories, or YAML files). It checks YAML,
// fields, prompts, referenced stages and variables, and that a claude stage
// could run as this user with this environment (root needs IS_SANDBOX=1).
func Lint(projectDir string, refs []string) LintResult {
	return LintAs(projectDir, refs, os.Geteuid(), os.Environ())
}

// LintAs is Lint for an engine running as euid with env.
func LintAs(projectDir string, refs []string, euid int, env []string) LintResult {
	cat := NewCatalog(projectDir)
	var res LintResult
	check := func(what string, plan *Plan, err error) {
		res.Checked = append(res.Checked, what)
		if err == nil && plan != nil {
			err = CheckSandbox(plan, euid, env)
		}
		if err == nil {
			return
		}
		if ps, ok := AsProblems(err); ok {
			res.Problems = append(res.Problems, ps...)
		} else if errors.Is(err, ErrAgentUnavailable) {
			res.Problems = append(res.Problems, Problem{File: what, Msg: strings.TrimPrefix(err.Error(), ErrAgentUnavailable.Error()+": ")})
		} else {
			res.Problems = append(res.Problems, Problem{File: what, Msg: err.Error()})
		}
	}
	if len(refs) == 0 {
		entries, problems := cat.List()
		res.Problems = append(res.Problems, problems...)
		for _, e := range entries {
			if e.Kind == "stage" {
				plan, err := cat.CompileStage("lint", e.Name, Options{})
				check("stage "+e.Name, plan, err)
			} else {
				plan, err := cat.CompilePipeline("lint", e.Name, Options{})
				check("pipeline "+e.Name, plan, err)
			}
		}
		return res
	}
	for _, ref := range refs {
		p := ref
		if !filepath.IsAbs(p) {
			p = filepath.Join(projectDir, p)
		}
		info, statErr := os.Stat(p)
		switch {
		case statErr == nil && (info.IsDir() || filepath.Base(p) == "stage.yaml" || filepath.Base(p) == "loop.yaml"):
			dir := p
			if !info.IsDir() {
				dir = filepath.Dir(p)
			}
			s, err := LoadStageDir(dir)
			var plan *Plan
			if err == nil {
				plan, err = cat.CompileStageDef("lint", s, Options{})
			}
			check("stage "+ref, plan, err)
		case statErr == nil:
			plan, err := cat.CompilePipeline("lint", p, Options{})
			check("pipeline "+ref, plan, err)
		case strings.ContainsRune(ref, '/'):
			res.Problems = append(res.Problems, Problem{File: ref, Msg: "no such file or directory"})
		default:
			_, serr := cat.Stage(ref)
			_, perr := cat.Pipeline(ref)
			sFound, pFound := !errors.Is(serr, ErrNotFound), !errors.Is(perr, ErrNotFound)
			if sFound {
				plan, err := cat.CompileStage("lint", ref, Options{})
				check("stage "+ref, plan, err)
			}
			if pFound {
				plan, err := cat.CompilePipeline("lint", ref, Options{})
				check("pipeline "+ref, plan, err)
			}
			if !sFound && !pFound {
				res.Problems = append(res.Problems, Problem{File: ref, Msg: fmt.Sprintf("no stage or pipeline named %q; run `agent-sessions lint` without arguments to check everything found", ref)})
			}
		}
	}
	return res
}
