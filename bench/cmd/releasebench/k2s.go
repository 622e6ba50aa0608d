//go:build unix

package main

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relcue/release/bench/gen"
)

// k2sDeltas measures what the k2s profile costs a delta: the sample's
// deltas and a K2s-sized Windows node archive, each made with the generic
// profile (release's format before the profile, which ships a changed
// bin/WindowsNodeArtifacts.zip as one file) and with the k2s profile
// (which expands the archive, hashes its members, and adds Apply-Delta.ps1,
// debian-delta/ and image-delta/), on the same packages in the same run.
func k2sDeltas(bin, w string) section {
	log.Printf("k2s profile")
	s := section{Title: "The k2s profile: cluster deltas K2s's own upgrade code applies",
		Intro: "`release build --target delta/1.4.0..1.5.0` of the sample, its packages and node packages cached, with `profile: \"generic\"` (the baseline: release's format as it was) and `profile: \"k2s\"`; first the sample as it is, then with its `bin/WindowsNodeArtifacts.zip` replaced by archives of K2s's size (about 530 MiB of Windows node binaries, only kubelet rebuilt between the releases). Wall time includes planning."}
	for _, c := range []struct {
		name  string
		large bool
	}{{"sample", false}, {"K2s-sized archive", true}} {
		sample := filepath.Join(w, "k2s-"+strings.ReplaceAll(c.name, " ", "-"))
		measure("(setup) copy the sample", "", nil, "cp", "-r", filepath.Join("fixtures", "sample"), sample)
		check(os.RemoveAll(filepath.Join(sample, "dist")))
		if c.large {
			for _, v := range []string{"1.4.0", "1.5.0"} {
				check(writeWindowsNodeArchive(filepath.Join(sample, "payload", v, "bin", "WindowsNodeArtifacts.zip"), v))
			}
			// 1.4.1's archive is 1.4.0's.
			measure("(setup) copy the 1.4.0 archive", "", nil, "cp", filepath.Join(sample, "payload", "1.4.0", "bin", "WindowsNodeArtifacts.zip"), filepath.Join(sample, "payload", "1.4.1", "bin", "WindowsNodeArtifacts.zip"))
		}
		var sizes [2]int64
		for i, profile := range []string{"generic", "k2s"} {
			cfg := filepath.Join(w, fmt.Sprintf("k2s-cfg-%s-%s", strings.ReplaceAll(c.name, " ", "-"), profile))
			measure("(setup) copy the configuration", "", nil, "cp", "-r", sample, cfg)
			rel := filepath.Join(cfg, "release.cue")
			src, err := os.ReadFile(rel)
			check(err)
			check(os.WriteFile(rel, []byte(strings.Replace(string(src), `profile: "k2s"`, `profile: "`+profile+`"`, 1)), 0o644))
			cache := filepath.Join(w, "k2s-cache-"+filepath.Base(cfg))
			measure("(setup) build the packages", "", nil, bin, "build", "-q", "-C", cfg, "--cache", cache, "--target", "package/*", "--target", "node/debian12/*")
			r := measure(fmt.Sprintf("%s, profile %s", c.name, profile), "", nil, bin, "build", "-q", "-C", cfg, "--cache", cache, "--target", "delta/1.4.0..1.5.0")
			r.Output = fileSize(filepath.Join(cfg, "dist", "deltas", "k2s-delta-1.4.0-to-1.5.0.zip"))
			sizes[i] = r.Output
			if i == 1 {
				r.Note = fmt.Sprintf("%.2fx the generic delta's time, %.2fx its size", float64(r.Wall)/float64(s.Rows[len(s.Rows)-1].Wall), float64(r.Output)/float64(sizes[0]))
			} else {
				r.Note = "baseline"
			}
			s.Rows = append(s.Rows, r)
		}
	}
	// The sample as the README builds it: its artifacts.json identifies
	// every byte it publishes.
	sample := filepath.Join(w, "k2s-readme")
	measure("(setup) copy the sample", "", nil, "cp", "-r", filepath.Join("fixtures", "sample"), sample)
	check(os.RemoveAll(filepath.Join(sample, "dist")))
	measure("(setup) build the sample", "", nil, bin, "build", "-q", "-C", sample, "--cache", filepath.Join(w, "k2s-readme-cache"))
	arts, err := os.ReadFile(filepath.Join(sample, "dist", "artifacts.json"))
	check(err)
	sum := sha256.Sum256(arts)
	var deltaSizes []string
	for _, from := range []string{"1.4.0", "1.4.1"} {
		deltaSizes = append(deltaSizes, fmt.Sprintf("%s → 1.5.0: %d bytes", from, fileSize(filepath.Join(sample, "dist", "deltas", "k2s-delta-"+from+"-to-1.5.0.zip"))))
	}
	s.Notes = []string{
		fmt.Sprintf("The k2s delta of the sample is %s larger: what K2s's apply needs and the generic delta lacks, the control plane's upgraded .debs (debian-delta/), the new Linux and Windows images (image-delta/), Apply-Delta.ps1 and the two Debian scripts, and the unchanged files K2s's entry points run. With a K2s-sized archive it is %s smaller instead: the generic delta ships the changed archive whole, the k2s delta only the tool directory that changed (bin/kube, complete); making it costs hashing the members of both archives, which the generic delta never opens, and no more memory.",
			human(s.Rows[1].Output-s.Rows[0].Output), human(s.Rows[2].Output-s.Rows[3].Output)),
		fmt.Sprintf("The sample as the README builds it: `dist/artifacts.json` has SHA-256 `%s`; its deltas: %s. Before the sample became a K2s product (commit 8cce5f0, the generic profile and the old payload) they were `3da84f4a1abe732bfcb080f76016c628e890c509f4de4f543f9f30b7de52989b` and 4659 and 4663 bytes.", hex.EncodeToString(sum[:]), strings.Join(deltaSizes, ", ")),
	}
	return s
}

// writeWindowsNodeArchive writes a WindowsNodeArtifacts.zip of K2s's size
// for release v (about 530 MiB of executable-like bytes: the Kubernetes
// tools, containerd, docker, the CNI plugins, nerdctl, helm, nssm), in
// which only kubelet is rebuilt in 1.5.0, deflated as Compress-Archive
// writes it.
func writeWindowsNodeArchive(p, v string) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for i, m := range []struct {
		name string
		size int64
	}{
		{"kubetools/kubelet.exe", 120 << 20}, {"kubetools/kubectl.exe", 50 << 20}, {"kubetools/kubeadm.exe", 40 << 20}, {"kubetools/kube-proxy.exe", 40 << 20},
		{"containerd/bin/containerd.exe", 50 << 20}, {"containerd/bin/ctr.exe", 25 << 20}, {"containerd/bin/containerd-shim-runhcs-v1.exe", 10 << 20},
		{"docker/docker/docker.exe", 40 << 20}, {"docker/docker/dockerd.exe", 60 << 20},
		{"cni_plugins/bridge.exe", 4 << 20}, {"cni_plugins/host-local.exe", 4 << 20}, {"cni_plugins/win-overlay.exe", 4 << 20},
		{"nerdctl/nerdctl.exe", 30 << 20}, {"helm/helm.exe", 50 << 20}, {"nssm/nssm.exe", 1 << 20},
	} {
		seed := uint64(i + 1)
		if m.name == "kubetools/kubelet.exe" && v == "1.5.0" {
			seed = 100
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: strings.ReplaceAll(m.name, "/", `\`), Method: zip.Deflate, Modified: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			f.Close()
			return err
		}
		if _, err := io.CopyN(w, gen.NewContent(seed), m.size); err != nil {
			f.Close()
			return err
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
