package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/agent-sessions/agent-sessions/engine/builtin"
	"github.com/agent-sessions/agent-sessions/state"
)

// Catalog sources, in lookup order (SPEC §6).
const (
	SourceProjectStages    = ".claude/stages"
	SourceProjectLoops     = "scripts/loops"
	SourceProjectPipelines = ".claude/pipelines"
	SourceScriptsPipelines = "scripts/pipelines"
	SourceBuiltin          = "builtin"
	SourcePath             = "path"
)

// Catalog finds stage and pipeline definitions for one project: the
// project's own directories first, then the built-ins embedded in the binary.
type Catalog struct {
	ProjectDir string
	// Builtin holds stages/ and pipelines/; builtin.FS unless a test swaps it.
	Builtin fs.FS
}

// NewCatalog returns the catalog of projectDir.
func NewCatalog(projectDir string) *Catalog {
	return &Catalog{ProjectDir: projectDir, Builtin: builtin.FS}
}

// definitionFS is a project directory as the catalog reads it: like
// os.DirFS, but every file is read with state.ReadRegularFile, so a FIFO,
// a device or a huge file where a definition or prompt should be is refused
// instead of hanging or filling the server's memory; and Stat never opens.
type definitionFS struct {
	fs.FS
	dir string
}

func newDefinitionFS(dir string) definitionFS { return definitionFS{FS: os.DirFS(dir), dir: dir} }

func (d definitionFS) osPath(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return filepath.Join(d.dir, filepath.FromSlash(name)), nil
}

func (d definitionFS) ReadFile(name string) ([]byte, error) {
	p, err := d.osPath("read", name)
	if err != nil {
		return nil, err
	}
	return state.ReadRegularFile(p, state.DefinitionLimit)
}

func (d definitionFS) Stat(name string) (fs.FileInfo, error) {
	p, err := d.osPath("stat", name)
	if err != nil {
		return nil, err
	}
	return os.Stat(p)
}

func (d definitionFS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := d.osPath("readdir", name)
	if err != nil {
		return nil, err
	}
	return os.ReadDir(p)
}

type root struct {
	source string
	fsys   fs.FS
	dir    string // path inside fsys
	label  string // how files are named in messages
}

func (c *Catalog) stageRoots() []root {
	return []root{
		{SourceProjectStages, newDefinitionFS(c.ProjectDir), ".claude/stages", filepath.Join(c.ProjectDir, ".claude", "stages")},
		{SourceProjectLoops, newDefinitionFS(c.ProjectDir), "scripts/loops", filepath.Join(c.ProjectDir, "scripts", "loops")},
		{SourceBuiltin, c.Builtin, "stages", "builtin:stages"},
	}
}

func (c *Catalog) pipelineRoots() []root {
	return []root{
		{SourceProjectPipelines, newDefinitionFS(c.ProjectDir), ".claude/pipelines", filepath.Join(c.ProjectDir, ".claude", "pipelines")},
		{SourceScriptsPipelines, newDefinitionFS(c.ProjectDir), "scripts/pipelines", filepath.Join(c.ProjectDir, "scripts", "pipelines")},
		{SourceBuiltin, c.Builtin, "pipelines", "builtin:pipelines"},
	}
}

// Stage finds a stage by name and reads its prompt.
func (c *Catalog) Stage(name string) (*Stage, error) {
	if err := ValidateDefinitionName("stage", name); err != nil {
		return nil, err
	}
	for _, r := range c.stageRoots() {
		s, err := loadStage(r, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return s, err
	}
	return nil, fmt.Errorf("%w: no stage %q in %s, %s or the built-ins (%s); run `agent-sessions lint` or the list tool with include_catalog to see what exists",
		ErrNotFound, name, filepath.Join(c.ProjectDir, ".claude", "stages"), filepath.Join(c.ProjectDir, "scripts", "loops"), strings.Join(c.builtinNames("stages"), ", "))
}

// loadStage reads <root>/<name>/stage.yaml (or loop.yaml) and its prompt. It
// returns fs.ErrNotExist when the root has no such stage directory.
func loadStage(r root, name string) (*Stage, error) {
	dir := path.Join(r.dir, name)
	label := joinLabel(r.label, name, r.source)
	var data []byte
	var file string
	for _, fname := range []string{"stage.yaml", "loop.yaml"} {
		b, err := fs.ReadFile(r.fsys, path.Join(dir, fname))
		if err == nil {
			data, file = b, joinLabel(label, fname, r.source)
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: read %s: %w", ErrInvalid, joinLabel(label, fname, r.source), err)
		}
	}
	if file == "" {
		if info, err := fs.Stat(r.fsys, dir); err == nil && info.IsDir() {
			return nil, Problems{{File: label, Msg: "stage directory has no stage.yaml (or loop.yaml); add one with at least completion:"}}
		}
		return nil, fs.ErrNotExist
	}
	s, err := ParseStage(file, data)
	if err != nil {
		return nil, err
	}
	s.Source = r.source
	if s.Name == "" {
		s.Name = name
	} else if s.Name != name {
		return nil, Problems{{File: file, Msg: fmt.Sprintf("name %q differs from its directory %q; make them the same", s.Name, name)}}
	}
	promptRel := "prompt.md"
	if s.Prompt != "" {
		if err := ValidateDefinitionName("prompt", s.Prompt); err != nil {
			return nil, Problems{{File: file, Msg: "prompt: " + strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")}}
		}
		promptRel = path.Join("prompts", s.Prompt+".md")
	}
	text, err := fs.ReadFile(r.fsys, path.Join(dir, promptRel))
	if errors.Is(err, state.ErrNotRegular) || errors.Is(err, state.ErrTooLarge) {
		return nil, Problems{{File: joinLabel(label, promptRel, r.source), Msg: err.Error()}}
	}
	if err != nil {
		hint := "write one"
		if s.Prompt == "" {
			hint = "write one, or set prompt: NAME to use prompts/NAME.md"
		}
		return nil, Problems{{File: joinLabel(label, promptRel, r.source), Msg: "prompt file missing: " + hint}}
	}
	if strings.TrimSpace(string(text)) == "" {
		return nil, Problems{{File: joinLabel(label, promptRel, r.source), Msg: "prompt file is empty"}}
	}
	s.PromptText = string(text)
	s.PromptFile = joinLabel(label, promptRel, r.source)
	return s, nil
}

func joinLabel(label, rel, source string) string {
	if source == SourceBuiltin {
		return label + "/" + rel
	}
	return filepath.Join(label, filepath.FromSlash(rel))
}

// LoadStageDir loads a stage from any directory holding a stage.yaml (or
// loop.yaml) and its prompt.
func LoadStageDir(dir string) (*Stage, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	parent, name := filepath.Dir(abs), filepath.Base(abs)
	s, err := loadStage(root{source: SourcePath, fsys: newDefinitionFS(parent), dir: ".", label: parent}, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no stage.yaml or loop.yaml", ErrNotFound, dir)
	}
	return s, err
}

// Pipeline finds a pipeline: the path as given (absolute, or relative to the
// project directory), then the project's pipeline directories, then the
// built-ins.
func (c *Catalog) Pipeline(ref string) (*Pipeline, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: pipeline name is empty", ErrInvalid)
	}
	if looksLikePath(ref) {
		p := ref
		if !filepath.IsAbs(p) {
			p = filepath.Join(c.ProjectDir, p)
		}
		data, err := state.ReadRegularFile(p, state.DefinitionLimit)
		if errors.Is(err, state.ErrNotRegular) || errors.Is(err, state.ErrTooLarge) {
			return nil, fmt.Errorf("%w: pipeline %w", ErrInvalid, err)
		}
		if err == nil {
			pl, err := ParsePipeline(p, data)
			if err != nil {
				return nil, err
			}
			pl.Source = SourcePath
			if pl.Name == "" {
				pl.Name = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(p), ".yaml"), ".yml")
			}
			return pl, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || strings.ContainsRune(ref, filepath.Separator) {
			return nil, fmt.Errorf("%w: pipeline file %s: %w", ErrNotFound, p, fileProblem(err))
		}
	}
	if err := ValidateDefinitionName("pipeline", strings.TrimSuffix(ref, ".yaml")); err != nil {
		return nil, err
	}
	name := strings.TrimSuffix(strings.TrimSuffix(ref, ".yaml"), ".yml")
	for _, r := range c.pipelineRoots() {
		for _, fname := range []string{name + ".yaml", name + ".yml", name} {
			rel := path.Join(r.dir, fname)
			data, err := fs.ReadFile(r.fsys, rel)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			label := joinLabel(r.label, fname, r.source)
			if err != nil {
				// A directory of that name is not a pipeline file.
				continue
			}
			pl, err := ParsePipeline(label, data)
			if err != nil {
				return nil, err
			}
			pl.Source = r.source
			if pl.Name == "" {
				pl.Name = name
			}
			return pl, nil
		}
	}
	return nil, fmt.Errorf("%w: no pipeline %q in %s, %s or the built-ins (%s); pass a path to a YAML file or see the catalog",
		ErrNotFound, ref, filepath.Join(c.ProjectDir, ".claude", "pipelines"), filepath.Join(c.ProjectDir, "scripts", "pipelines"), strings.Join(c.builtinNames("pipelines"), ", "))
}

func looksLikePath(ref string) bool {
	return strings.ContainsRune(ref, '/') || strings.HasSuffix(ref, ".yaml") || strings.HasSuffix(ref, ".yml")
}

// fileProblem says a file error in the user's words — a missing file is
// "no such file", not the syscall's text — and keeps the error as the
// cause, so errors.Is still sees fs.ErrNotExist.
func fileProblem(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return reworded{text: "no such file", err: err}
	}
	return err
}

// reworded is an error said in other words, its cause kept.
type reworded struct {
	text string
	err  error
}

func (r reworded) Error() string { return r.text }
func (r reworded) Unwrap() error { return r.err }

func (c *Catalog) builtinNames(dir string) []string {
	entries, _ := fs.ReadDir(c.Builtin, dir)
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return names
}

// Entry is one startable definition of the catalog.
type Entry struct {
	Kind        string   `json:"kind" jsonschema:"stage or pipeline"`
	Name        string   `json:"name" jsonschema:"name to pass to start_session"`
	Description string   `json:"description" jsonschema:"what it does"`
	Termination string   `json:"termination" jsonschema:"how it ends: a completion strategy, or the pipeline's stages"`
	DefaultMax  int      `json:"default_max" jsonschema:"default iteration limit (pipelines: total runs of all stages)"`
	Source      string   `json:"source" jsonschema:"where it was found: .claude/stages, scripts/loops, .claude/pipelines, scripts/pipelines or builtin"`
	Path        string   `json:"path" jsonschema:"file it was read from"`
	Stages      []string `json:"stages,omitempty" jsonschema:"a pipeline's stages in order"`
	Provider    string   `json:"provider,omitempty" jsonschema:"provider the definition asks for"`
}

// List returns every stage and pipeline the project can start, each under
// its first-found name (a project stage shadows a built-in of the same
// name), and the problems of definitions that could not be read.
func (c *Catalog) List() ([]Entry, Problems) {
	l := catalogListing{seen: map[string]bool{}, projectDir: c.ProjectDir}
	for _, r := range c.stageRoots() {
		l.stages(r)
	}
	for _, r := range c.pipelineRoots() {
		l.pipelines(c, r)
	}
	entries := l.entries
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].Kind != entries[j].Kind {
			return entries[i].Kind > entries[j].Kind // stages first
		}
		return entries[i].Name < entries[j].Name
	})
	return entries, l.problems
}

// catalogListing gathers List's entries root by root; seen holds the
// names ("stage/x", "pipeline/y") an earlier root already gave.
type catalogListing struct {
	entries    []Entry
	problems   Problems
	seen       map[string]bool
	projectDir string
}

// add keeps a definition's problems (or an error reading it) for the list.
func (l *catalogListing) add(err error) {
	if ps, ok := AsProblems(err); ok {
		l.problems = append(l.problems, ps...)
	} else if err != nil {
		l.problems = append(l.problems, Problem{File: l.projectDir, Msg: err.Error()})
	}
}

// stages lists the stage directories of one root.
func (l *catalogListing) stages(r root) {
	dirs, _ := fs.ReadDir(r.fsys, r.dir)
	for _, d := range dirs {
		if !d.IsDir() || l.seen["stage/"+d.Name()] || ValidateDefinitionName("stage", d.Name()) != nil {
			continue
		}
		l.seen["stage/"+d.Name()] = true
		s, err := loadStage(r, d.Name())
		if err != nil {
			l.add(err)
			continue
		}
		max := s.MaxIterations
		if max == 0 {
			max = DefaultMaxIterations
		}
		if s.Completion == CompletionAllItems {
			max = len(s.Items)
		}
		l.entries = append(l.entries, Entry{Kind: "stage", Name: s.Name, Description: s.Description, Termination: s.Completion,
			DefaultMax: max, Source: s.Source, Path: s.File, Provider: s.Provider})
	}
}

// pipelines lists the pipeline files of one root.
func (l *catalogListing) pipelines(c *Catalog, r root) {
	files, _ := fs.ReadDir(r.fsys, r.dir)
	for _, f := range files {
		name := f.Name()
		if f.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(name, ".yaml"), ".yml")
		if l.seen["pipeline/"+base] {
			continue
		}
		l.seen["pipeline/"+base] = true
		data, err := fs.ReadFile(r.fsys, path.Join(r.dir, name))
		if err != nil {
			l.add(err)
			continue
		}
		pl, err := ParsePipeline(joinLabel(r.label, name, r.source), data)
		if err != nil {
			l.add(err)
			continue
		}
		l.entries = append(l.entries, c.pipelineEntry(pl, base, r.source))
	}
}

// pipelineEntry is a pipeline's catalog entry: its stages, and its runs
// in all as the default limit.
func (c *Catalog) pipelineEntry(pl *Pipeline, base, source string) Entry {
	e := Entry{Kind: "pipeline", Name: base, Description: pl.Description, Source: source, Path: pl.File}
	var parts []string
	for _, s := range pl.Stages {
		e.Stages = append(e.Stages, s.Name)
		runs := c.defaultRuns(s)
		e.DefaultMax += runs
		parts = append(parts, fmt.Sprintf("%s×%d", s.Name, runs))
	}
	e.Termination = "stages: " + strings.Join(parts, " → ")
	return e
}

// defaultRuns is how many times a pipeline stage runs unless told: its
// runs, else one per perspective, else the reused stage's limit, else one.
func (c *Catalog) defaultRuns(s PipelineStage) int {
	if s.Runs != 0 {
		return s.Runs
	}
	if n := len(s.Perspectives); n > 0 {
		return n
	}
	if s.Stage == "" {
		return 1
	}
	st, err := c.Stage(s.Stage)
	if err != nil {
		return 1
	}
	if st.MaxIterations == 0 {
		return DefaultMaxIterations
	}
	return st.MaxIterations
}
