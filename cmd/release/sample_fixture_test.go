package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/modules/delta/deltatest"
	"github.com/relcue/release/modules/nodepkg/nodepkgtest"
)

// The sample's bin/WindowsNodeArtifacts.zip of each release is made from
// fixtures/sample/windowsnode (tool folders as K2s's archive has them)
// and a Windows image per release group, as Windows PowerShell's
// Compress-Archive writes a zip (deltatest.NestedZip). This test checks
// that the committed archives are exactly that; after a change under
// windowsnode/, write them again with
//
//	RELEASE_UPDATE_SAMPLE=1 go test ./cmd/release -run TestSampleWindowsNodeArtifacts
var sampleWindowsNode = map[string]struct {
	parts  []string
	images map[string]string // file name under images/ -> image content
}{
	"1.4.0": {[]string{"common", "1.4.x", "kube-1.31.4"}, map[string]string{"shsk2s.azurecr.io__pause-win_v1.4.0.tar": "pause-win 1.4.0"}},
	"1.4.1": {[]string{"common", "1.4.x", "kube-1.31.6"}, map[string]string{"shsk2s.azurecr.io__pause-win_v1.4.0.tar": "pause-win 1.4.0"}},
	"1.5.0": {[]string{"common", "1.5.0", "kube-1.32.2"}, map[string]string{"shsk2s.azurecr.io__pause-win_v1.5.0.tar": "pause-win 1.5.0"}},
}

// sampleWindowsImages are in every release's archive.
var sampleWindowsImages = map[string]string{"mcr.microsoft.com__windows__nanoserver_ltsc2022.tar": "nanoserver ltsc2022"}

func TestSampleWindowsNodeArtifacts(t *testing.T) {
	sample := filepath.Join("..", "..", "fixtures", "sample")
	update := os.Getenv("RELEASE_UPDATE_SAMPLE") == "1"
	for version, spec := range sampleWindowsNode {
		members := map[string][]byte{}
		for _, part := range spec.parts {
			root := filepath.Join(sample, "windowsnode", part)
			err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
				if err != nil || e.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(root, p)
				data, err := os.ReadFile(p)
				members[filepath.ToSlash(rel)] = data
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		images := map[string]string{}
		for name, content := range sampleWindowsImages {
			images[name] = content
		}
		for name, content := range spec.images {
			images[name] = content
		}
		for name, content := range images {
			ref := strings.TrimSuffix(name, ".tar")
			ref = strings.ReplaceAll(ref, "__", "/")
			if i := strings.LastIndex(ref, "_"); i >= 0 {
				ref = ref[:i] + ":" + ref[i+1:]
			}
			tar := nodepkgtest.OCIArchiveFor(t, t.TempDir(), ref, "windows", "amd64", content)
			data, err := os.ReadFile(tar)
			if err != nil {
				t.Fatal(err)
			}
			members["images/"+name] = data
		}
		want := deltatest.NestedZip(t, members)
		p := filepath.Join(sample, "payload", version, "bin", "WindowsNodeArtifacts.zip")
		if update {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not made from fixtures/sample/windowsnode (%v); write it again with RELEASE_UPDATE_SAMPLE=1", p, err)
		}
	}
}
