// Package builtin embeds the default stages and pipelines that ship inside
// the binary: stages/<name>/{stage.yaml,prompt.md} and pipelines/<name>.yaml.
package builtin

import "embed"

// FS holds stages/ and pipelines/.
//
//go:embed stages pipelines
var FS embed.FS
