// Package dist publishes build results into the output directory: each
// artifact copied from the cache and checked against its recorded digest on
// the way, then artifacts.json and SHA256SUMS written last, so a reader that
// sees artifacts.json sees a complete, consistent set.
package dist

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/relcue/release/pipeline/cache"
)

// Artifact is one line of artifacts.json.
type Artifact struct {
	Target string `json:"target"`
	Kind   string `json:"kind"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Item pairs a target with its cache entry.
type Item struct {
	Target string
	Entry  *cache.Entry
}

// Collect lists the artifacts of items, sorted by path, and rejects two
// targets that claim the same output path.
func Collect(items []Item) ([]Artifact, error) {
	var out []Artifact
	owner := map[string]string{}
	for _, it := range items {
		for _, f := range it.Entry.Meta.Files {
			if prev, dup := owner[f.Path]; dup {
				return nil, fmt.Errorf("targets %s and %s both produce %s; give them different outputs", prev, it.Target, f.Path)
			}
			owner[f.Path] = it.Target
			out = append(out, Artifact{Target: it.Target, Kind: f.Kind, Path: f.Path, SHA256: f.SHA256, Size: f.Size})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// Publish copies every artifact of items into dir and writes
// artifacts.json and SHA256SUMS. Files are written to temporary names and
// renamed; an error leaves earlier artifacts.json untouched.
func Publish(dir string, items []Item) ([]Artifact, error) {
	arts, err := Collect(items)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	src := map[string]string{}
	for _, it := range items {
		for _, f := range it.Entry.Meta.Files {
			src[f.Path] = filepath.Join(it.Entry.Dir, filepath.FromSlash(f.Path))
		}
	}
	for _, a := range arts {
		if err := copyVerified(src[a.Path], filepath.Join(dir, filepath.FromSlash(a.Path)), a.SHA256); err != nil {
			return nil, fmt.Errorf("publish %s: %w", a.Path, err)
		}
	}
	js, err := json.MarshalIndent(arts, "", "  ")
	if err != nil {
		return nil, err
	}
	js = append(js, '\n')
	var sums bytes.Buffer
	for _, a := range arts {
		// Two spaces: the format sha256sum -c reads.
		fmt.Fprintf(&sums, "%s  %s\n", a.SHA256, a.Path)
	}
	if err := writeAtomic(filepath.Join(dir, "SHA256SUMS"), sums.Bytes()); err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(dir, "artifacts.json"), js); err != nil {
		return nil, err
	}
	return arts, nil
}

func copyVerified(src, dst, want string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("cached copy changed while publishing (sha256 %s, want %s); run `release cache gc --all` and build again", got, want)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

func writeAtomic(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}
