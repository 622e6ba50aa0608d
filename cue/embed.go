// Package cueschema embeds the CUE schema of a release configuration (the
// CUE module in this directory) so that the binary validates configurations
// without a CUE registry or a checkout of this repository.
package cueschema

import (
	"embed"
	"fmt"
	"path"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/load"
)

//go:embed cue.mod/module.cue schema/*.cue
var files embed.FS

// Module is the CUE module path of the schema.
const Module = "relcue.dev/release@v0"

// FilePrefix starts the file name of every schema position, e.g.
// "relcue.dev/release@v0/schema/deltas.cue". It is not a local path: callers
// use it to tell schema positions from positions in a user's files.
const FilePrefix = Module + "/"

// Config builds the schema package in ctx and returns its #Config
// definition, the value a configuration is unified with. Values from
// different contexts cannot be combined, so the caller passes the context it
// builds the user's configuration in.
func Config(ctx *cue.Context) (cue.Value, error) {
	return Definition(ctx, "#Config")
}

// Definition builds the schema package in ctx and returns one of its
// definitions by name (e.g. "#K2sSkip"), for defaults that depend on more
// than one field and are therefore applied by the loader.
func Definition(ctx *cue.Context, name string) (cue.Value, error) {
	inst, err := instance()
	if err != nil {
		return cue.Value{}, err
	}
	v := ctx.BuildInstance(inst)
	if err := v.Err(); err != nil {
		return cue.Value{}, fmt.Errorf("embedded schema: %w", err)
	}
	def := v.LookupPath(cue.ParsePath(name))
	if !def.Exists() {
		return cue.Value{}, fmt.Errorf("embedded schema: no %s definition", name)
	}
	return def, nil
}

func instance() (*build.Instance, error) {
	insts := load.Instances([]string{"./schema"}, &load.Config{
		FS:  files,
		Dir: "/",
		// Positions name the module, not a local file that does not exist.
		FromFSPath: func(p string) string { return FilePrefix + strings.TrimPrefix(path.Clean(p), "/") },
	})
	if len(insts) != 1 {
		return nil, fmt.Errorf("embedded schema: %d instances, want 1", len(insts))
	}
	if err := insts[0].Err; err != nil {
		return nil, fmt.Errorf("embedded schema: %w", err)
	}
	return insts[0], nil
}
