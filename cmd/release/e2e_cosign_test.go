package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/internal/peers"
	"github.com/relcue/release/modules/addonsign"
)

// TestCosignVerifiesSignedAddonPushes has the cosign CLI check the
// signatures `release build --push` writes, with a key cosign made.
func TestCosignVerifiesSignedAddonPushes(t *testing.T) {
	cosign := peers.Tool(t, "cosign")
	reg := peers.StartRegistry(t)
	keys := t.TempDir()
	gen := exec.Command(cosign, "generate-key-pair")
	gen.Dir = keys
	gen.Env = append(os.Environ(), "COSIGN_PASSWORD=s3cret")
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	other := t.TempDir()
	gen = exec.Command(cosign, "generate-key-pair")
	gen.Dir = other
	gen.Env = append(os.Environ(), "COSIGN_PASSWORD=other")
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}

	dir := copySample(t)
	f, err := os.OpenFile(filepath.Join(dir, "addons.cue"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "\nsigning: cosign: {}\n")
	f.Close()
	docker := "DOCKER_CONFIG=" + t.TempDir()
	args := []string{"build", "-C", dir, "--cache", filepath.Join(t.TempDir(), "cache"), "--format", "json", "--push", "--registry", reg.Host, "--target", "push/*"}

	// Without the key, or with a wrong password, nothing is pushed.
	if r := releaseCmd(t, []string{docker}, args...); r.code != 2 || !strings.Contains(r.stderr, addonsign.EnvKey) || !strings.Contains(r.stderr, "addons.cue") {
		t.Fatalf("no key: exit %d\n%s", r.code, r.stderr)
	}
	bad := []string{docker, addonsign.EnvKey + "=" + filepath.Join(keys, "cosign.key"), "COSIGN_PASSWORD=wrong"}
	if r := releaseCmd(t, bad, args...); r.code != 2 || !strings.Contains(r.stderr, "wrong password") || strings.Contains(r.stderr, "s3cret") {
		t.Fatalf("wrong password: exit %d\n%s", r.code, r.stderr)
	}
	if out, err := exec.Command(peers.Tool(t, "oras"), "repo", "ls", "--plain-http", reg.Host).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("a refused build pushed: %s %v", out, err)
	}

	env := []string{docker, addonsign.EnvKey + "=" + filepath.Join(keys, "cosign.key"), "COSIGN_PASSWORD=s3cret"}
	r := releaseCmd(t, env, args...)
	if r.code != 0 {
		t.Fatalf("signed push: exit %d\n%s", r.code, r.stderr)
	}
	var record struct {
		Pushed []struct{ Reference, Digest, Signature string }
	}
	rec := readFile(t, filepath.Join(dir, "dist", "pushes", "addon-metrics-0.7.2.json"))
	if err := json.Unmarshal(rec, &record); err != nil || len(record.Pushed) != 1 || record.Pushed[0].Signature == "" {
		t.Fatalf("push record: %v\n%s", err, rec)
	}
	p := record.Pushed[0]
	repo := strings.TrimSuffix(p.Reference, ":v0.7.2")
	verify := func(key string, ref string) (string, error) {
		out, err := exec.Command(cosign, "verify", "--key", key, "--insecure-ignore-tlog=true", "--allow-http-registry=true", ref).CombinedOutput()
		return string(out), err
	}
	for _, ref := range []string{p.Reference, repo + "@" + p.Digest} {
		out, err := verify(filepath.Join(keys, "cosign.pub"), ref)
		if err != nil || !strings.Contains(out, p.Digest) {
			t.Fatalf("cosign verify %s: %v\n%s", ref, err, out)
		}
	}
	if out, err := verify(filepath.Join(other, "cosign.pub"), p.Reference); err == nil {
		t.Fatalf("cosign verify with another key passed:\n%s", out)
	}

	// Pushing again signs again with the same bytes: the same signature
	// manifest, nothing new in the registry.
	if r := releaseCmd(t, env, args...); r.code != 0 {
		t.Fatalf("second signed push: exit %d\n%s", r.code, r.stderr)
	}
	if again := readFile(t, filepath.Join(dir, "dist", "pushes", "addon-metrics-0.7.2.json")); string(again) != string(rec) {
		t.Fatalf("signing again changed the record:\n%s\n%s", rec, again)
	}

	// A signature for another digest does not verify this artifact:
	// move the tag to a different artifact and ask cosign.
	ing := readFile(t, filepath.Join(dir, "dist", "pushes", "addon-ingress-1.4.0.json"))
	var ingRec struct {
		Pushed []struct{ Reference, Digest string }
	}
	json.Unmarshal(ing, &ingRec)
	if len(ingRec.Pushed) == 0 {
		t.Fatalf("ingress record: %s", ing)
	}
	oras := peers.Tool(t, "oras")
	if out, err := exec.Command(oras, "cp", "--from-plain-http", "--to-plain-http", ingRec.Pushed[0].Reference, repo+":forged").CombinedOutput(); err != nil {
		t.Fatalf("oras cp: %v\n%s", err, out)
	}
	if out, err := verify(filepath.Join(keys, "cosign.pub"), repo+":forged"); err == nil {
		t.Fatalf("cosign verified an artifact nobody signed in this repository:\n%s", out)
	}
}
