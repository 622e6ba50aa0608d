package cueschema

import (
	"io/fs"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/errors"

	"github.com/relcue/release/internal/glob"
)

func schema(t *testing.T) (*cue.Context, cue.Value) {
	t.Helper()
	ctx := cuecontext.New()
	def, err := Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, def
}

// A user may omit these fields, so their defaults must be concrete and be
// the documented ones.
func TestDefaults(t *testing.T) {
	_, def := schema(t)
	for path, want := range map[string]string{
		"build.dist":                       `"dist"`,
		"build.compression.level":          `6`,
		"deltas.defaults.mode":             `"file"`,
		"deltas.defaults.wholeDirectories": `["bin/cni"]`,
	} {
		v, _ := def.LookupPath(cue.ParsePath(path)).Default()
		b, err := v.MarshalJSON()
		if err != nil || string(b) != want {
			t.Errorf("%s: default %s (err %v), want %s", path, b, err, want)
		}
	}
}

// The profiles' skip patterns, names, mandatory paths and nested archive
// (pipeline/config applies them) are concrete and valid: a malformed one
// would break every configuration of its profile.
func TestProfileDefinitionsAreValid(t *testing.T) {
	ctx := cuecontext.New()
	for _, name := range []string{"#DefaultSkip", "#K2sSkip", "#K2sSkipNames", "#K2sAlways", "#K2sNested", "#K2sApplyScript"} {
		v, err := Definition(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Validate(cue.Concrete(true)); err != nil {
			t.Errorf("%s: %v", name, errors.Details(err, nil))
		}
	}
	for _, name := range []string{"#DefaultSkip", "#K2sSkip"} {
		v, _ := Definition(ctx, name)
		var skip []string
		if err := v.Decode(&skip); err != nil || len(skip) == 0 {
			t.Fatalf("%s: %v %v", name, skip, err)
		}
		for _, p := range skip {
			if err := glob.Validate(p); err != nil {
				t.Errorf("%s %q: %v", name, p, err)
			}
		}
	}
	if _, err := Definition(ctx, "#NoSuch"); err == nil {
		t.Error("Definition(#NoSuch) succeeded")
	}
}

func TestClosed(t *testing.T) {
	for name, src := range map[string]string{
		"top level":  `product: name: "k2s", releases: {}, bogus: 1`,
		"nested":     `product: {name: "k2s", colour: "red"}, releases: {}`,
		"in release": `product: name: "k2s", releases: "1.0.0": {zip: {path: "a.zip"}, note: "x"}`,
		"in list":    `product: name: "k2s", releases: {}, deltas: policies: [{from: "same-minor", extra: true}]`,
		"in os":      `product: name: "k2s", releases: {}, os: d: {distro: "debian", codename: "bookworm", packages: {}}`,
		"in layer":   `product: name: "k2s", releases: {}, os: d: {distro: "debian", codename: "bookworm", releases: "1.0.0": images: [{ref: "a", layers: [{dir: "x", owner: "root"}]}]}`,
		"in scripts": `product: name: "k2s", releases: {}, os: d: {distro: "debian", codename: "bookworm", releases: "1.0.0": debs: g: [{build: {name: "a", version: "1", arch: "all", maintainer: "m", description: "d", scripts: config: "c"}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			ctx, def := schema(t)
			err := def.Unify(ctx.CompileString(src)).Validate(cue.Concrete(true))
			if err == nil || !strings.Contains(err.Error(), "field not allowed") {
				t.Fatalf("got %v, want a field not allowed error", err)
			}
		})
	}
}

// Defaults inside os apply to every OS target, release, .deb and image.
func TestOSDefaults(t *testing.T) {
	ctx, def := schema(t)
	v := def.Unify(ctx.CompileString(`product: name: "k2s", releases: "1.0.0": zip: path: "a.zip"
os: d: {distro: "debian", codename: "bookworm", releases: "1.0.0": {
	debs: g: [{build: {name: "a", version: "1", arch: "all", maintainer: "m", description: "d", contents: [{src: "a", dst: "/a"}]}}]
	images: [{ref: "a"}]
}}`))
	if err := v.Validate(cue.Concrete(true)); err != nil {
		t.Fatal(errors.Details(err, nil))
	}
	for path, want := range map[string]string{
		"os.d.arch":         `["amd64"]`,
		"os.d.controlPlane": `false`,
		`os.d.releases."1.0.0".debs.g[0].build.contents[0].type`: `"file"`,
		`os.d.releases."1.0.0".images[0].layers`:                 `[]`,
		`os.d.releases."1.0.0".images[0]`:                        `{"ref":"a","layers":[]}`,
	} {
		b, err := v.LookupPath(cue.ParsePath(path)).MarshalJSON()
		if err != nil || string(b) != want {
			t.Errorf("%s: %s (err %v), want %s", path, b, err, want)
		}
	}
}

func TestMinimalConfigIsValid(t *testing.T) {
	ctx, def := schema(t)
	v := def.Unify(ctx.CompileString(`product: name: "k2s", releases: "1.0.0": zip: path: "a.zip"`))
	if err := v.Validate(cue.Concrete(true)); err != nil {
		t.Fatal(errors.Details(err, nil))
	}
	if b, err := v.LookupPath(cue.ParsePath("product.profile")).MarshalJSON(); err != nil || string(b) != `"generic"` {
		t.Errorf("product.profile = %s (%v), want the generic profile by default", b, err)
	}
}

// Schema positions must not look like local files, or a caller would point
// a user at a file they do not have.
func TestSchemaPositionsNameTheModule(t *testing.T) {
	ctx, def := schema(t)
	err := def.Unify(ctx.CompileString(`product: name: "K2s", releases: {}`)).Validate(cue.Concrete(true))
	if err == nil {
		t.Fatal("upper-case product name accepted")
	}
	var schemaFiles []string
	for _, p := range errors.Positions(errors.Errors(err)[0]) {
		if f := p.Filename(); strings.HasPrefix(f, FilePrefix) {
			schemaFiles = append(schemaFiles, f)
		}
	}
	if len(schemaFiles) == 0 || schemaFiles[0] != FilePrefix+"schema/config.cue" {
		t.Fatalf("schema positions %v, want %sschema/config.cue", schemaFiles, FilePrefix)
	}
}

func TestEmbedHoldsModule(t *testing.T) {
	for _, name := range []string{"cue.mod/module.cue", "schema/config.cue", "schema/release.cue", "schema/deltas.cue", "schema/os.cue"} {
		b, err := fs.ReadFile(files, name)
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	b, _ := fs.ReadFile(files, "cue.mod/module.cue")
	if !strings.Contains(string(b), `"`+Module+`"`) {
		t.Errorf("module.cue does not declare %s:\n%s", Module, b)
	}
}
