// Package remotecache shares cache entries through an OCI registry, so
// that CI jobs on fresh runners reuse each other's results. An entry is an
// OCI artifact tagged with its cache key: the entry's meta.json as config,
// one layer per output file, each layer's digest the file's SHA-256.
// Nothing pulled is trusted: the manifest must describe the key asked for,
// every blob is verified against its digest while it streams, and the
// local cache hashes the files again before it stores them. A registry
// that cannot be reached, or stops answering within the limits of
// internal/netx, turns the remote cache off for the rest of the build with
// a warning; the build itself goes on locally.
package remotecache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/relcue/release/internal/netx"
	"github.com/relcue/release/pipeline/cache"
	"github.com/relcue/release/pipeline/step"
)

// Media types of a remote cache entry.
const (
	ArtifactType  = "application/vnd.relcue.release.cache.v1"
	MetaMediaType = "application/vnd.relcue.release.cache.meta.v1+json"
	FileMediaType = "application/vnd.relcue.release.cache.file.v1"
	// maxMeta bounds the config blob read before anything is trusted.
	maxMeta = 4 << 20
)

// ErrMiss means the registry has no entry for the key.
var ErrMiss = errors.New("not in the remote cache")

// Ref is a parsed oci://host[:port]/repository address.
type Ref struct {
	Host, Repository string
}

func (r Ref) String() string { return "oci://" + r.Host + "/" + r.Repository }

// ParseRef reads oci://host[:port]/repo (the scheme may be left out).
func ParseRef(s string) (Ref, error) {
	rest := strings.TrimPrefix(s, "oci://")
	if strings.Contains(rest, "://") {
		return Ref{}, fmt.Errorf("remote cache %q: use oci://host[:port]/repository", s)
	}
	host, repo, ok := strings.Cut(rest, "/")
	if !ok || host == "" || repo == "" {
		return Ref{}, fmt.Errorf("remote cache %q: use oci://host[:port]/repository, e.g. oci://ghcr.io/acme/release-cache", s)
	}
	if _, err := url.Parse("http://" + host); err != nil {
		return Ref{}, fmt.Errorf("remote cache %q: bad host: %w", s, err)
	}
	r := Ref{Host: host, Repository: strings.TrimSuffix(repo, "/")}
	if _, err := remote.NewRepository(r.Host + "/" + r.Repository); err != nil {
		return Ref{}, fmt.Errorf("remote cache %q: %w", s, err)
	}
	return r, nil
}

// Options configure a Remote.
type Options struct {
	// PlainHTTP talks HTTP (a registry on loopback); Insecure accepts a
	// TLS certificate that does not verify.
	PlainHTTP, Insecure bool
	// Pull and Push say which directions are on (--cache-from/--cache-to).
	Pull, Push bool
	// Warn receives one line per problem (nil: discarded).
	Warn func(format string, args ...any)
	// Transport replaces the HTTP transport below the limits and retries
	// (tests).
	Transport http.RoundTripper
	// Net bounds every request in time and says how often a transient
	// failure is tried (zero: the defaults).
	Net netx.Config
}

// Remote is one registry repository used as a cache.
type Remote struct {
	ref  Ref
	repo *remote.Repository
	opts Options

	mu       sync.Mutex
	down     error // set once the registry failed to answer
	pulled   int
	pushed   int
	rejected int
}

// New connects nothing yet: the first request finds out whether the
// registry answers.
func New(r Ref, opts Options) (*Remote, error) {
	repo, err := remote.NewRepository(r.Host + "/" + r.Repository)
	if err != nil {
		return nil, err
	}
	repo.PlainHTTP = opts.PlainHTTP
	var cred auth.CredentialFunc
	if store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{}); err == nil {
		cred = credentials.Credential(store)
	}
	repo.Client = &auth.Client{
		Client:     opts.Net.RegistryClient(opts.Transport, opts.Insecure),
		Cache:      auth.NewCache(),
		Credential: cred,
		Header:     http.Header{"User-Agent": {"relcue-release"}},
	}
	if opts.Warn == nil {
		opts.Warn = func(string, ...any) {}
	}
	return &Remote{ref: r, repo: repo, opts: opts}, nil
}

// Ref is the remote's address.
func (r *Remote) Ref() Ref { return r.ref }

// Stats counts what a build did with the remote.
type Stats struct{ Pulled, Pushed, Rejected int }

func (r *Remote) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{Pulled: r.pulled, Pushed: r.pushed, Rejected: r.rejected}
}

// Tag is the tag of a key's entry.
func Tag(key string) string { return "key-" + key }

// usable reports whether the remote is still worth asking.
func (r *Remote) usable(pull bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down != nil {
		return false
	}
	if pull {
		return r.opts.Pull
	}
	return r.opts.Push
}

// failed records an error talking to the registry: an unreachable one is
// not asked again in this build.
func (r *Remote) failed(what string, err error) {
	if unreachable(err) {
		r.mu.Lock()
		first := r.down == nil
		r.down = err
		r.mu.Unlock()
		if first {
			how := "is unreachable"
			if errors.As(err, new(*netx.DeadlineError)) {
				how = "stopped answering"
			}
			r.opts.Warn("warning: remote cache %s %s (%v); building locally without it", r.ref, how, err)
		}
		return
	}
	r.opts.Warn("warning: remote cache %s: %s: %v", r.ref, what, err)
}

// unreachable reports whether err says the registry cannot be talked to:
// a request that failed, or a transfer that ran out of time (a stalled
// blob fails outside any request, as its body is read).
func unreachable(err error) bool {
	var ue *url.Error
	var de *netx.DeadlineError
	return (errors.As(err, &ue) || errors.As(err, &de)) && !errors.Is(err, context.Canceled)
}

// Fetch writes the entry of key into outDir (an empty directory) and
// returns its artifacts, after checking that the manifest describes this
// key, target, kind and step version and streaming every file through its
// digest. ErrMiss when the registry has no such entry or is off; any other
// error means the entry was refused (outDir may hold partial files).
func (r *Remote) Fetch(ctx context.Context, key string, info cache.Info, outDir string) ([]step.Artifact, error) {
	if !r.usable(true) {
		return nil, ErrMiss
	}
	arts, err := r.fetch(ctx, key, info, outDir)
	switch {
	case err == nil:
		r.mu.Lock()
		r.pulled++
		r.mu.Unlock()
		return arts, nil
	case errors.Is(err, errdef.ErrNotFound), errors.Is(err, ErrMiss):
		return nil, ErrMiss
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case unreachable(err):
		r.failed("pull "+info.Target, err)
		return nil, ErrMiss
	}
	r.mu.Lock()
	r.rejected++
	r.mu.Unlock()
	r.opts.Warn("warning: remote cache entry of %s (%s) is refused: %v; building it locally", info.Target, Tag(key)[:16], err)
	return nil, err
}

func (r *Remote) fetch(ctx context.Context, key string, info cache.Info, outDir string) ([]step.Artifact, error) {
	desc, rc, err := r.repo.FetchReference(ctx, Tag(key))
	if err != nil {
		return nil, err
	}
	raw, err := content.ReadAll(rc, desc)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if man.ArtifactType != ArtifactType || man.Config.MediaType != MetaMediaType {
		return nil, fmt.Errorf("manifest is not a release cache entry (artifactType %q)", man.ArtifactType)
	}
	if man.Config.Size > maxMeta {
		return nil, fmt.Errorf("meta.json of %d bytes is too large", man.Config.Size)
	}
	metaRaw, err := content.FetchAll(ctx, r.repo, man.Config)
	if err != nil {
		return nil, fmt.Errorf("meta.json: %w", err)
	}
	var meta cache.Meta
	if err := json.Unmarshal(metaRaw, &meta); err != nil {
		return nil, fmt.Errorf("meta.json: %w", err)
	}
	if meta.Key != key || meta.Target != info.Target || meta.Kind != info.Kind || meta.StepVersion != info.StepVersion {
		return nil, fmt.Errorf("the entry is for %s (%s, step %s, key %.12s), not %s (%s, step %s, key %.12s)",
			meta.Target, meta.Kind, meta.StepVersion, meta.Key, info.Target, info.Kind, info.StepVersion, key)
	}
	if len(meta.Files) != len(man.Layers) {
		return nil, fmt.Errorf("meta.json lists %d files, the manifest %d layers", len(meta.Files), len(man.Layers))
	}
	var arts []step.Artifact
	for i, f := range meta.Files {
		l := man.Layers[i]
		if err := checkPath(f.Path); err != nil {
			return nil, err
		}
		if l.Digest != digest.NewDigestFromEncoded(digest.SHA256, f.SHA256) || l.Size != f.Size || l.Annotations[ocispec.AnnotationTitle] != f.Path {
			return nil, fmt.Errorf("layer %d (%s) does not match meta.json's %s", i, l.Digest, f.Path)
		}
		if err := r.fetchFile(ctx, l, filepath.Join(outDir, filepath.FromSlash(f.Path))); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		arts = append(arts, step.Artifact{Path: f.Path, Kind: f.Kind})
	}
	return arts, nil
}

// fetchFile streams one blob into dst through a digest check.
func (r *Remote) fetchFile(ctx context.Context, desc ocispec.Descriptor, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	rc, err := r.repo.Fetch(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	vr := content.NewVerifyReader(rc, desc)
	if _, err := io.Copy(f, vr); err != nil {
		f.Close()
		return err
	}
	if err := vr.Verify(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkPath refuses a path that would leave the output directory.
func checkPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, `\`) {
		return fmt.Errorf("file path %q is not a clean relative path", p)
	}
	return nil
}

// Push uploads a verified local entry under its key. Blobs the registry
// has are not sent again; the tag is set last, so it never names a
// partial entry.
func (r *Remote) Push(ctx context.Context, e *cache.Entry) {
	if !r.usable(false) {
		return
	}
	if err := r.push(ctx, e); err != nil {
		if ctx.Err() != nil {
			return
		}
		r.failed("push "+e.Meta.Target, err)
		return
	}
	r.mu.Lock()
	r.pushed++
	r.mu.Unlock()
}

func (r *Remote) push(ctx context.Context, e *cache.Entry) error {
	metaRaw, err := json.Marshal(e.Meta)
	if err != nil {
		return err
	}
	cfg := content.NewDescriptorFromBytes(MetaMediaType, metaRaw)
	if err := r.pushBlob(ctx, cfg, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(metaRaw)), nil }); err != nil {
		return err
	}
	man := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config:       cfg,
		Annotations:  map[string]string{"org.relcue.release.target": e.Meta.Target},
	}
	for _, f := range e.Meta.Files {
		d := ocispec.Descriptor{MediaType: FileMediaType, Digest: digest.NewDigestFromEncoded(digest.SHA256, f.SHA256), Size: f.Size,
			Annotations: map[string]string{ocispec.AnnotationTitle: f.Path}}
		p := filepath.Join(e.Dir, filepath.FromSlash(f.Path))
		if err := r.pushBlob(ctx, d, func() (io.ReadCloser, error) { return os.Open(p) }); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		man.Layers = append(man.Layers, d)
	}
	raw, err := json.Marshal(man)
	if err != nil {
		return err
	}
	md := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, raw)
	return r.repo.PushReference(ctx, md, bytes.NewReader(raw), Tag(e.Key))
}

func (r *Remote) pushBlob(ctx context.Context, d ocispec.Descriptor, open func() (io.ReadCloser, error)) error {
	ok, err := r.repo.Exists(ctx, d)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	err = r.repo.Push(ctx, d, rc)
	if errors.Is(err, errdef.ErrAlreadyExists) {
		return nil
	}
	return err
}
