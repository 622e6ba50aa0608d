//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/relcue/release/bench/gen"
)

// tool finds a peer tool where .ci/tools installs it, or on PATH.
func tool(name string) string {
	dir := os.Getenv("RELEASE_TOOLS")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "release-tools")
	}
	if p := filepath.Join(dir, "bin", name); fileSize(p) > 0 {
		return p
	}
	p, err := exec.LookPath(name)
	if err != nil {
		log.Fatalf("the addon benchmark needs %s: run `make tools` (oras) or `apt-get install docker-registry`", name)
	}
	return p
}

// registry starts Debian's docker-registry on a free loopback port with
// its own storage and returns its host and a stop function.
func registry(w, name string) (string, func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	host := l.Addr().String()
	l.Close()
	dir := filepath.Join(w, name)
	check(os.MkdirAll(dir, 0o755))
	cfg := filepath.Join(dir, "config.yml")
	check(os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\n",
		filepath.Join(dir, "data"), host)), 0o644))
	cmd := exec.Command(tool("docker-registry"), "serve", cfg)
	check(cmd.Start())
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			log.Fatalf("registry %s did not start: %v", host, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return host, func() { cmd.Process.Kill(); cmd.Wait() }
}

// addonPush measures `release build --push` of an addon against `oras
// copy --from-oci-layout` of the very same exported layout, each into its
// own fresh registry of the same kind, then the re-push of the unchanged
// artifact with both.
func addonPush(bin, w string, scale float64) section {
	log.Printf("addon export and push")
	oras := tool("oras")
	s := section{Title: "Addon artifacts: push against oras copy", Intro: "Each push goes into a fresh Debian docker-registry on 127.0.0.1 (two instances of the same binary, so neither run finds the other's blobs). The baseline is the oras CLI copying the layout `release build` exported (`oras copy --from-oci-layout <layout>:v<version> --to-plain-http ...`). release's wall time includes loading and planning the configuration (hashing its inputs); the re-push runs push the unchanged artifact again."}

	sample, err := filepath.Abs("fixtures/sample")
	check(err)
	runAddon := func(label, cfg, name, version string) {
		slug := "addon-" + name
		cache, dist := filepath.Join(w, "cache-"+slug), filepath.Join(w, "dist-"+slug)
		exp := buildJSON(bin, cfg, cache, dist, "addon/"+name+"/"+version)
		layout := filepath.Join(dist, "addons", name+"-"+version)
		size, _ := dirSize(filepath.Join(layout, "blobs"))
		s.Rows = append(s.Rows, result{Name: label + ": export (layout + .oci.tar)", Wall: exp.seconds("addon/" + name + "/" + version),
			Output: exp.sizeOf("addon/"+name+"/"+version, "addon-archive"), Note: "step time; output is the .oci.tar"})

		regA, stopA := registry(w, "registry-"+slug+"-oras")
		defer stopA()
		regB, stopB := registry(w, "registry-"+slug+"-release")
		defer stopB()
		ref := "--to-plain-http"
		copyArgs := []string{oras, "copy", "--from-oci-layout", layout + ":v" + version, ref, regA + "/addons/" + name + ":v" + version}
		base := measure(label+": oras copy --from-oci-layout (baseline)", w, nil, copyArgs...)
		base.Output = size
		pushArgs := []string{bin, "build", "-q", "-C", cfg, "--cache", cache, "--dist", dist, "--push", "--registry", regB, "--plain-http", "--format", "json", "--target", "push/addon/" + name + "/" + version}
		env := []string{"DOCKER_CONFIG=" + filepath.Join(w, "docker-config")}
		rel := measure(label+": release build --push", w, env, pushArgs...)
		rel.Output = size
		pushID := "push/addon/" + name + "/" + version
		rel.Note = fmt.Sprintf("%.2fx oras copy; the push step itself %s", float64(base.Wall)/float64(rel.Wall), stepTime(rel, pushID))
		rebase := measure(label+": oras copy again (unchanged)", w, nil, copyArgs...)
		repush := measure(label+": release build --push again (unchanged)", w, env, pushArgs...)
		repush.Note = fmt.Sprintf("%.2fx oras copy again; the push step itself %s, no blob uploaded", float64(rebase.Wall)/float64(repush.Wall), stepTime(repush, pushID))
		s.Rows = append(s.Rows, base, rel, rebase, repush)
	}
	runAddon("sample metrics", sample, "metrics", "0.7.2")

	cfg := filepath.Join(w, "cfg-addon")
	images := max(2, int(6*scale))
	const imageSize = 64 << 20
	var entries strings.Builder
	for i := range images {
		p := filepath.Join(cfg, "images", fmt.Sprintf("img%02d.tar", i))
		check(gen.Write(filepath.Dir(p), "", []gen.File{{Path: filepath.Base(p), Size: imageSize, Seed: uint64(7000 + i)}}))
		fmt.Fprintf(&entries, "\t\t{ref: \"example.com/bench/img%02d:1.0\", archive: path: %q},\n", i, "images/"+filepath.Base(p))
	}
	adir := filepath.Join(cfg, "addon")
	check(os.MkdirAll(filepath.Join(adir, "manifests"), 0o755))
	check(os.WriteFile(filepath.Join(adir, "addon.manifest.yaml"), []byte("apiVersion: v1\nkind: AddonManifest\nmetadata: {name: big, description: generated bench addon}\nspec:\n  implementations:\n    - name: big\n"), 0o644))
	check(os.WriteFile(filepath.Join(adir, "manifests", "app.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\n"), 0o644))
	check(os.WriteFile(filepath.Join(cfg, "release.cue"), []byte(fmt.Sprintf(`package release
product: name: "bench"
build: date: "2025-01-01T00:00:00Z"
releases: "1.0.0": inputs: [{dir: "addon"}]
addons: big: {
	dir: "addon"
	version: "1.0.0"
	implementations: big: images: linux: [
%s	]
}
registry: {host: "127.0.0.1:5000", plainHTTP: true}
`, entries.String())), 0o644))
	runAddon(fmt.Sprintf("generated (%d images of %s)", images, human(imageSize)), cfg, "big", "1.0.0")
	s.Notes = append(s.Notes, "The push step itself is oras-go doing what the oras CLI does, so the two are close. The rest of release's wall time is loading the configuration, hashing the inputs for the plan and verifying the cached export before it is pushed (every cache read re-hashes the entry, so a corrupted layout is never pushed); on the unchanged re-push that fixed cost is nearly all of it, and no blob is uploaded by either client.")
	return s
}

// stepTime is the time the build report gives one target.
func stepTime(r result, id string) time.Duration {
	var rep buildReport
	check(json.Unmarshal([]byte(r.stdout), &rep))
	return rep.seconds(id).Round(10 * time.Millisecond)
}
