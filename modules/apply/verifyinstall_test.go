package apply

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/delta/deltatest"
	"github.com/relcue/release/modules/pkgzip"
)

// nestedPackage writes a full package with a nested archive whose
// kubetools/ folder installs into bin/kube, and returns it with that
// layout and the generic profile's skip rules.
func nestedPackage(t *testing.T, dir string) (string, Layout) {
	t.Helper()
	tree := deltatest.Tree{
		"VERSION":          {Data: []byte("1.4.0")},
		"bin/k2s.exe":      {Data: []byte("exe"), Exec: true},
		"lib/ünïcode.psm1": {Data: []byte("# module\r\n")},
		"docs/readme.txt":  {Data: []byte("read me")},
		"bin/tools.zip": {Data: deltatest.NestedZip(t, map[string][]byte{
			"kubetools/kubelet.exe": []byte("kubelet"), "kubetools/kubectl.exe": []byte("kubectl"), "other/x.txt": []byte("not installed"),
		})},
	}
	pkg := filepath.Join(dir, "k2s-1.4.0.zip")
	deltatest.WritePackage(t, pkg, tree, true)
	layout, err := LayoutOf("")
	if err != nil {
		t.Fatal(err)
	}
	layout.Nested = []delta.Nested{{Archive: "bin/tools.zip", Folders: []delta.NestedFolder{{From: "kubetools", To: "bin/kube", Whole: true}}}}
	return pkg, layout
}

func installWith(t *testing.T, pkg, dir string, layout Layout) {
	t.Helper()
	if _, err := Install(context.Background(), pkg, dir, InstallOptions{Nested: layout.Nested, Skip: layout.Skip, SkipNames: layout.SkipNames, Workers: 2}); err != nil {
		t.Fatal(err)
	}
}

func verifyOK(t *testing.T, dir string, opts CheckOptions) *InstallCheck {
	t.Helper()
	chk, err := VerifyInstallation(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !chk.OK || len(chk.Differences) != 0 {
		t.Fatalf("verify %s against %v is not clean:\n%s", dir, opts.Sources, chk)
	}
	return chk
}

// differences is a check's differences as "problem path" lines.
func differences(chk *InstallCheck) []string {
	var out []string
	for _, d := range chk.Differences {
		out = append(out, d.Problem+" "+d.Path)
	}
	return out
}

// TestVerifyInstallationEveryDifference: an installation made by release
// install verifies clean, nested archive members included, against its
// record and against its package; after damage, every missing, extra and
// changed file is reported at once, with both hashes, in text and JSON,
// while files the skip rules leave to the product are only counted.
func TestVerifyInstallationEveryDifference(t *testing.T) {
	dir := t.TempDir()
	pkg, layout := nestedPackage(t, dir)
	install := filepath.Join(dir, "installed")
	installWith(t, pkg, install, layout)

	chk := verifyOK(t, install, CheckOptions{Workers: 2})
	if chk.Basis != "record" || chk.FilesChecked != 8 || chk.Version != "1.4.0" || !slices.Equal(chk.Against, []string{"k2s-1.4.0.zip"}) {
		t.Errorf("clean check: %+v", chk)
	}
	// The package given without a layout is laid out as the record says
	// it was installed: its nested members are no extras.
	verifyOK(t, install, CheckOptions{Sources: []string{pkg}, Workers: 2})
	verifyOK(t, install, CheckOptions{Sources: []string{pkg}, Layout: &layout, Workers: 2})

	write(t, install, "bin/kube/kubelet.exe", "patched kubelet")
	write(t, install, "extra.log", "left over")
	write(t, install, "config", "a kubeconfig the cluster wrote") // generic skip rule "config"
	for _, p := range []string{"docs/readme.txt", "lib/ünïcode.psm1"} {
		if err := os.Remove(filepath.Join(install, filepath.FromSlash(p))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(install, "lib", "ünïcode.psm1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("k2s.exe", filepath.Join(install, "bin", "link.exe")); err != nil {
		t.Fatal(err)
	}
	want := []string{"changed bin/kube/kubelet.exe", "extra bin/link.exe", "missing docs/readme.txt", "extra extra.log", "missing lib/ünïcode.psm1"}
	for _, opts := range []CheckOptions{{}, {Sources: []string{pkg}}} {
		opts.Workers = 3
		chk, err := VerifyInstallation(context.Background(), install, opts)
		if err != nil {
			t.Fatal(err)
		}
		if chk.OK || !slices.Equal(differences(chk), want) || chk.Missing != 2 || chk.Extra != 2 || chk.Changed != 1 || chk.Ignored != 1 {
			t.Fatalf("against %v: %v\n%s", opts.Sources, differences(chk), chk)
		}
		byPath := map[string]Difference{}
		for _, d := range chk.Differences {
			byPath[d.Path] = d
		}
		if d := byPath["bin/kube/kubelet.exe"]; d.ExpectedSHA256 != sha("kubelet") || *d.ExpectedSize != 7 || d.ActualSHA256 != sha("patched kubelet") || *d.ActualSize != 15 {
			t.Errorf("changed: %+v", d)
		}
		if d := byPath["extra.log"]; d.ActualSHA256 != sha("left over") || d.ExpectedSHA256 != "" {
			t.Errorf("extra: %+v", d)
		}
		if d := byPath["docs/readme.txt"]; d.ExpectedSHA256 != sha("read me") || d.ActualSHA256 != "" {
			t.Errorf("missing: %+v", d)
		}
		if d := byPath["lib/ünïcode.psm1"]; d.Detail != "a directory is there instead" {
			t.Errorf("directory in place of a file: %+v", d)
		}
		if d := byPath["bin/link.exe"]; d.Detail != "a symbolic link" {
			t.Errorf("symbolic link: %+v", d)
		}
		text := chk.String()
		for _, s := range []string{"does not match 1.4.0", "2 missing, 2 extra, 1 changed", "1 left to the product by its skip rules",
			"changed  bin/kube/kubelet.exe: sha256 " + sha("patched kubelet") + " (15 bytes), expected sha256 " + sha("kubelet") + " (7 bytes)",
			"missing  docs/readme.txt: expected sha256 " + sha("read me"), "extra    extra.log: sha256 " + sha("left over")} {
			if !strings.Contains(text, s) {
				t.Errorf("text report lacks %q:\n%s", s, text)
			}
		}
	}

	// JSON: a structured list of path, problem and both hashes.
	chk, err := VerifyInstallation(context.Background(), install, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(chk)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OK          bool `json:"ok"`
		Differences []map[string]any
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OK || len(doc.Differences) != 5 {
		t.Fatalf("json: %s", data)
	}
	changed := doc.Differences[0]
	if changed["path"] != "bin/kube/kubelet.exe" || changed["problem"] != "changed" || changed["expectedSHA256"] != sha("kubelet") ||
		changed["actualSHA256"] != sha("patched kubelet") || changed["expectedSize"] != 7.0 || changed["actualSize"] != 15.0 {
		t.Errorf("json difference: %v", changed)
	}
}

// TestVerifyInstallationExpectation: where verify takes what an
// installation should hold from when it has no record, and what it
// refuses to judge.
func TestVerifyInstallationExpectation(t *testing.T) {
	dir := t.TempDir()
	pkg, layout := nestedPackage(t, dir)
	ctx := context.Background()

	// Unpacked by hand: the installed package-manifest.json, with the
	// archive's directories not listed (they are counted).
	unpacked := filepath.Join(dir, "unpacked")
	deltatest.Extract(t, pkg, unpacked)
	write(t, unpacked, "bin/kube/kubelet.exe", "kubelet")
	chk := verifyOK(t, unpacked, CheckOptions{Layout: &layout})
	if chk.Basis != "package-manifest.json" || chk.Unlisted != 1 {
		t.Errorf("against the installed manifest: %+v", chk)
	}
	// Neither a record nor a manifest: nothing to check against.
	bare := filepath.Join(dir, "bare")
	write(t, bare, "VERSION", "1.4.0")
	if _, err := VerifyInstallation(ctx, bare, CheckOptions{}); err == nil || !strings.Contains(err.Error(), "name the package it came from") {
		t.Errorf("no record, no manifest: %v", err)
	}

	install := filepath.Join(dir, "installed")
	installWith(t, pkg, install, layout)
	// Half an apply is not judged.
	if err := os.Mkdir(filepath.Join(install, delta.ApplyStateDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyInstallation(ctx, install, CheckOptions{}); err == nil || !strings.Contains(err.Error(), "release apply --recover") {
		t.Errorf("interrupted apply: %v", err)
	}
	if err := os.Remove(filepath.Join(install, delta.ApplyStateDir)); err != nil {
		t.Fatal(err)
	}
	// Something else moved VERSION on: the record is stale, and says so.
	write(t, install, "VERSION", "1.5.0")
	if _, err := VerifyInstallation(ctx, install, CheckOptions{}); err == nil || !strings.Contains(err.Error(), "is for 1.4.0 but the installation is 1.5.0") {
		t.Errorf("stale record: %v", err)
	}
	// A damaged record is an error, not a clean check.
	write(t, filepath.Join(install), delta.InstallRecord, `{"RecordVersion": 1, "Surprise": true}`)
	if _, err := VerifyInstallation(ctx, install, CheckOptions{}); err == nil || !strings.Contains(err.Error(), "is damaged") {
		t.Errorf("damaged record: %v", err)
	}
}

// TestRecordFollowsApply: the record release install writes is carried
// through release apply (what the delta writes, removes and replaces
// wholesale), so the applied installation verifies clean on its own,
// against the target package, and against the base package followed by
// the delta; the delta alone describes it too.
func TestRecordFollowsApply(t *testing.T) {
	f := newFixture(t, 61, true)
	ctx := context.Background()
	layout := Layout{Skip: f.s.Skip}
	install := filepath.Join(f.dir, "installed")
	installWith(t, f.baseZip, install, layout)
	verifyOK(t, install, CheckOptions{Workers: 2})

	rep, err := Apply(ctx, f.deltaZip, install, Options{Workers: 2})
	if err != nil || rep.Result != nil || rep.NotGuaranteed != "" {
		t.Fatalf("%+v %v", rep, err)
	}
	chk := verifyOK(t, install, CheckOptions{Workers: 2})
	if chk.Version != f.targetVer || !slices.Equal(chk.Against, []string{"k2s-base.zip", "k2s-delta.zip"}) || chk.Unlisted != 0 {
		t.Errorf("after the apply: %+v", chk)
	}
	verifyOK(t, install, CheckOptions{Sources: []string{f.targetZip}, Workers: 2})
	verifyOK(t, install, CheckOptions{Sources: []string{f.baseZip, f.deltaZip}, Workers: 2})
	verifyOK(t, install, CheckOptions{Sources: []string{f.deltaZip}, Workers: 2})
	if _, err := VerifyInstallation(ctx, install, CheckOptions{Sources: []string{f.targetZip, f.deltaZip}}); err == nil || !strings.Contains(err.Error(), "give the deltas in the order they were applied") {
		t.Errorf("a delta that does not follow: %v", err)
	}
	if _, err := VerifyInstallation(ctx, install, CheckOptions{Sources: []string{f.deltaZip, f.baseZip}}); err == nil || !strings.Contains(err.Error(), "give it first") {
		t.Errorf("a package after a delta: %v", err)
	}

	// The record lists what the target package installs, but for the
	// files the skip rules leave alone.
	rec, err := readRecord(install)
	if err != nil {
		t.Fatal(err)
	}
	target, err := recordFromPackage(ctx, f.targetZip, layout, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Record{rec, target} {
		for p := range r.Files {
			if r.skips(p) {
				delete(r.Files, p)
			}
		}
	}
	if !mapsEqual(rec.Files, target.Files) {
		t.Errorf("record after the apply:\n%v\nwant\n%v", rec.Files, target.Files)
	}
}

func mapsEqual(a, b map[string]pkgzip.Digest) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestRecordCommitsWithTheFiles: the record is part of the commit: an
// apply rolled back leaves the old record, one rolled forward by recovery
// the new one.
func TestRecordCommitsWithTheFiles(t *testing.T) {
	f := newFixture(t, 67, true)
	ctx := context.Background()
	install := filepath.Join(f.dir, "installed")
	installWith(t, f.baseZip, install, Layout{Skip: f.s.Skip})
	before, err := os.ReadFile(filepath.Join(install, delta.InstallRecord))
	if err != nil {
		t.Fatal(err)
	}

	withHook(t, func(name string, _ int) error {
		if name == pointCommitted {
			return errors.New("disk on fire")
		}
		return nil
	})
	if _, err := Apply(ctx, f.deltaZip, install, Options{Workers: 2}); err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("failed commit: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(install, delta.InstallRecord)); string(after) != string(before) {
		t.Fatal("a rolled back apply changed the record")
	}
	verifyOK(t, install, CheckOptions{})

	withHook(t, func(name string, i int) error {
		if name == pointCommit && i == 2 {
			return errCrash
		}
		return nil
	})
	if _, err := Apply(ctx, f.deltaZip, install, Options{Workers: 2}); !isCrash(err) {
		t.Fatalf("crash: %v", err)
	}
	crashHook = nil
	if rep, err := Recover(ctx, install); err != nil || rep.Recovery.Action != "rolled-forward" {
		t.Fatalf("recover: %+v %v", rep, err)
	}
	if chk := verifyOK(t, install, CheckOptions{}); chk.Version != f.targetVer {
		t.Errorf("after recovery the record is for %s", chk.Version)
	}
}

// TestForcedApplyOnEmptyInstallation is FIRST-USE finding 5: a delta
// forced onto an empty directory says first what it does not guarantee,
// then fails listing every file of the target it did not write, and
// leaves an installation verify reports the same list for.
func TestForcedApplyOnEmptyInstallation(t *testing.T) {
	f := newFixture(t, 71, true)
	ctx := context.Background()
	empty := filepath.Join(f.dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}

	_, err := Apply(ctx, f.deltaZip, empty, Options{})
	if err == nil || !strings.Contains(err.Error(), "installation is unversioned (no VERSION file) but the delta is for "+f.baseVer+"; install the full package k2s-target.zip into a new directory") ||
		!strings.Contains(err.Error(), "--force would apply this delta anyway, which is dangerous") {
		t.Fatalf("unforced: %v", err)
	}

	var notices []string
	opts := Options{Force: true, Workers: 2, Notice: func(msg string) {
		// Said before anything is written (but apply's lock).
		ents, _ := os.ReadDir(empty)
		for _, e := range ents {
			if e.Name() != delta.ApplyLockFile {
				t.Errorf("notice after %s was written", e.Name())
			}
		}
		notices = append(notices, msg)
	}}
	rep, err := Apply(ctx, f.deltaZip, empty, opts)
	var mismatch *ResultError
	if !errors.As(err, &mismatch) || rep == nil || rep.Result == nil || rep.Result != mismatch.Check {
		t.Fatalf("forced: %+v %v", rep, err)
	}
	if len(notices) != 1 || notices[0] != rep.NotGuaranteed ||
		!strings.Contains(notices[0], "the installation is unversioned (no VERSION file), not the delta's base "+f.baseVer) ||
		!strings.Contains(notices[0], "guarantees only the") || !strings.Contains(notices[0], "release verify --install-dir") {
		t.Errorf("notices %q", notices)
	}

	// Every file of the target the delta does not ship is missing; the
	// skip rules' files are not the delta's to write.
	var want []string
	for p := range f.s.Target {
		if _, shipped := f.m.Files.Target[p]; !shipped && !f.skipped(p) {
			want = append(want, "missing "+p)
		}
	}
	slices.Sort(want)
	if got := differences(mismatch.Check); !slices.Equal(got, want) {
		t.Fatalf("differences:\n%v\nwant\n%v", got, want)
	}
	for _, s := range []string{"--force: the result is not " + f.targetVer, "release verify --install-dir", "install the full package k2s-target.zip", "\n  missing  " + strings.TrimPrefix(want[0], "missing ")} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
	if s := rep.String(); !strings.Contains(s, empty+": unversioned -> "+f.targetVer+" (forced; the delta is "+f.baseVer+" -> "+f.targetVer+")") ||
		!strings.Contains(s, "the result is NOT "+f.targetVer) {
		t.Errorf("summary %q", s)
	}

	// Afterwards the installation is verifiable on its own, with the
	// same list.
	chk, err := VerifyInstallation(ctx, empty, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if chk.OK || !slices.Equal(differences(chk), want) {
		t.Errorf("verify after the forced apply:\n%s", chk)
	}
}

// TestForcedApplyOnOtherVersion: a delta forced onto another version
// reports that version, and succeeds only when the result is the
// target; otherwise every difference is listed, extra files included.
func TestForcedApplyOnOtherVersion(t *testing.T) {
	f := newFixture(t, 79, true)
	ctx := context.Background()
	install := filepath.Join(f.dir, "installed")
	installWith(t, f.baseZip, install, Layout{Skip: f.s.Skip})
	write(t, install, "VERSION", "1.4.999")

	_, err := Apply(ctx, f.deltaZip, install, Options{})
	if err == nil || !strings.Contains(err.Error(), "installation is 1.4.999 but the delta is for "+f.baseVer) {
		t.Fatalf("unforced: %v", err)
	}
	// Only VERSION differed, and the delta rewrites it: the result is
	// the target.
	rep, err := Apply(ctx, f.deltaZip, install, Options{Force: true, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.InstalledVersion != "1.4.999" || rep.Result == nil || !rep.Result.OK ||
		!strings.Contains(rep.String(), ": 1.4.999 -> "+f.targetVer+" (forced; the delta is "+f.baseVer+" -> "+f.targetVer+")") ||
		!strings.Contains(rep.String(), "the result matches "+f.targetVer) {
		t.Fatalf("forced over 1.4.999: %s", rep)
	}
	verifyOK(t, install, CheckOptions{})

	// An unchanged file that is not the target's, and a file no release
	// has: the forced apply cannot make them right, and says so.
	unchanged := ""
	for _, p := range sortedKeys(f.s.Target) {
		if _, shipped := f.m.Files.Target[p]; !shipped && !f.skipped(p) && p != "VERSION" {
			unchanged = p
			break
		}
	}
	again := filepath.Join(f.dir, "again")
	installWith(t, f.baseZip, again, Layout{Skip: f.s.Skip})
	write(t, again, "VERSION", "1.4.999")
	write(t, again, unchanged, "not the target's")
	write(t, again, "stale/left-over.dll", "from 1.4.999")
	rep, err = Apply(ctx, f.deltaZip, again, Options{Force: true, Workers: 2})
	var mismatch *ResultError
	if !errors.As(err, &mismatch) {
		t.Fatalf("forced over a changed file: %v", err)
	}
	want := []string{"changed " + unchanged, "extra stale/left-over.dll"}
	if got := differences(mismatch.Check); !slices.Equal(got, want) {
		t.Fatalf("differences %v, want %v", got, want)
	}
	if d := mismatch.Check.Differences[0]; d.ActualSHA256 != sha("not the target's") || d.ExpectedSHA256 != f.m.Files.Base[unchanged].SHA256 && d.ExpectedSHA256 != sha(string(f.s.Target[unchanged].Data)) {
		t.Errorf("changed file: %+v", d)
	}
	if rep.InstalledVersion != "1.4.999" || !strings.Contains(rep.NotGuaranteed, "the installation is 1.4.999, not the delta's base "+f.baseVer) {
		t.Errorf("report: %+v", rep)
	}
	chk, err := VerifyInstallation(ctx, again, CheckOptions{})
	if err != nil || !slices.Equal(differences(chk), want) {
		t.Errorf("verify after: %v\n%s", err, chk)
	}
}

// TestVersionHint: a refused version names the delta made for the
// installed version as release names deltas, or the full package, and
// calls --force dangerous.
func TestVersionHint(t *testing.T) {
	m := &delta.Manifest{BaseVersion: "1.4.0", TargetVersion: "1.5.0", TargetPackage: "k2s-1.5.0.zip"}
	for _, c := range []struct {
		deltaZip, installed, targetPackage string
		want                               []string
	}{
		{"dist/deltas/k2s-delta-1.4.0-to-1.5.0.zip", "1.4.1", "k2s-1.5.0.zip", []string{"use k2s-delta-1.4.1-to-1.5.0.zip (the delta from 1.4.1) or install the full package k2s-1.5.0.zip", "dangerous", "stays 1.4.1's"}},
		{"d.zip", "1.4.1", "k2s-1.5.0.zip", []string{"use k2s-delta-1.4.1-to-1.5.0.zip"}},
		{"my-delta-1.4.0-to-1.5.0.zip", "1.3.9", "odd.zip", []string{"use my-delta-1.3.9-to-1.5.0.zip"}},
		{"d.zip", "1.3.9", "odd.zip", []string{"use a delta from 1.3.9 to 1.5.0 or install the full package odd.zip"}},
		{"d.zip", "", "k2s-1.5.0.zip", []string{"install the full package k2s-1.5.0.zip into a new directory (release install) instead", "dangerous"}},
	} {
		m.TargetPackage = c.targetPackage
		got := versionHint(c.deltaZip, m, c.installed)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("versionHint(%s, %q) = %q, lacks %q", c.deltaZip, c.installed, got, w)
			}
		}
	}
}
