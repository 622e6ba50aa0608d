// Package addonpush pushes exported addon artifacts to an OCI registry
// with oras-go: each implementation's manifest to
// <registry>/<prefix>/<export name>:v<version>. Blobs the registry already
// has are not uploaded again, every request is bounded in time
// (internal/netx) and transient failures are retried a bounded number of
// times with backoff, and the tag is written last, so it never points at
// an incomplete artifact.
package addonpush

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/relcue/release/internal/netx"
	"github.com/relcue/release/modules/addonsign"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Registry says where and how to push.
type Registry struct {
	Host      string
	PlainHTTP bool
	// Insecure accepts TLS certificates that do not verify.
	Insecure bool
	// Prefix is the repository path before the export name.
	Prefix string
}

// Pushed is one manifest pushed and tagged.
type Pushed struct {
	Reference    string `json:"reference"`
	Digest       string `json:"digest"`
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType,omitempty"`
	Size         int64  `json:"size"`
	// Uploaded and Skipped count blobs and manifests sent, and those the
	// registry already had; they vary between runs and are not part of
	// the push record.
	Uploaded int `json:"-"`
	Skipped  int `json:"-"`
	// Present means the registry had the whole artifact: only the tag was
	// (re)written.
	Present bool `json:"-"`
	// Signature is the cosign signature manifest (tag@digest) pushed
	// beside the artifact, when signing is on.
	Signature string `json:"signature,omitempty"`
}

// Options configures Push.
type Options struct {
	Registry Registry
	// Tag is applied to every manifest of the layout ("v<version>").
	Tag string
	// ExportName returns the repository name of an index entry.
	ExportName func(ocispec.Descriptor) (string, error)
	// Concurrency bounds parallel blob uploads.
	Concurrency int
	// Progress is told the bytes of every blob uploaded or skipped.
	Progress func(n int64)
	// Credentials overrides the docker config credential store (tests).
	Credentials auth.CredentialFunc
	// Transport overrides the HTTP transport below the limits and retries
	// (tests).
	Transport http.RoundTripper
	// Net bounds every request in time and says how often a transient
	// failure is tried (zero: the defaults).
	Net netx.Config
	// Signer, when set, pushes a cosign signature of every artifact.
	Signer *addonsign.Key
}

// Push copies every manifest of the OCI layout in dir (with its config
// and layers) to the registry and tags it.
func Push(ctx context.Context, dir string, opts Options) ([]Pushed, error) {
	src, err := oci.NewFromFS(ctx, os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	idx, err := readIndex(dir)
	if err != nil {
		return nil, err
	}
	client, err := newClient(opts)
	if err != nil {
		return nil, err
	}
	var out []Pushed
	for _, d := range idx.Manifests {
		p, err := pushManifest(ctx, src, client, d, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Pushed) int { return strings.Compare(a.Reference, b.Reference) })
	return out, nil
}

// pushManifest copies one index entry of src to its repository, tags it,
// and signs it when the options have a signer.
func pushManifest(ctx context.Context, src oras.ReadOnlyTarget, client *auth.Client, d ocispec.Descriptor, opts Options) (Pushed, error) {
	name, err := opts.ExportName(d)
	if err != nil {
		return Pushed{}, err
	}
	ref := opts.Registry.Host + "/" + opts.Registry.Prefix + "/" + name
	repo, err := remote.NewRepository(ref)
	if err != nil {
		return Pushed{}, fmt.Errorf("repository %s: %w", ref, err)
	}
	repo.PlainHTTP = opts.Registry.PlainHTTP
	repo.Client = client
	var uploaded, skipped atomic.Int64
	co := oras.DefaultCopyOptions
	co.Concurrency = max(opts.Concurrency, 1)
	co.PostCopy = func(_ context.Context, d ocispec.Descriptor) error {
		uploaded.Add(1)
		if opts.Progress != nil {
			opts.Progress(d.Size)
		}
		return nil
	}
	co.OnCopySkipped = func(_ context.Context, d ocispec.Descriptor) error {
		skipped.Add(1)
		if opts.Progress != nil {
			opts.Progress(d.Size)
		}
		return nil
	}
	// Copy uploads the blobs, then the manifest, then the tag: an
	// interrupted push leaves at most unreferenced blobs behind.
	got, err := oras.Copy(ctx, src, d.Digest.String(), repo, opts.Tag, co)
	if err != nil {
		return Pushed{}, explain(ref+":"+opts.Tag, opts.Registry, err)
	}
	if got.Digest != d.Digest {
		return Pushed{}, fmt.Errorf("push %s:%s: the registry stored digest %s, want %s", ref, opts.Tag, got.Digest, d.Digest)
	}
	p := Pushed{Reference: ref + ":" + opts.Tag, Digest: d.Digest.String(), MediaType: d.MediaType,
		ArtifactType: d.ArtifactType, Size: d.Size, Uploaded: int(uploaded.Load()), Skipped: int(skipped.Load()),
		// oras re-puts an existing manifest by tag without reporting
		// it as copied or skipped.
		Present: uploaded.Load() == 0 && skipped.Load() == 0}
	if opts.Signer != nil {
		// The artifact is in place before its signature: a signature
		// never names a digest the registry does not have.
		sig, err := opts.Signer.Sign(ref, d.Digest)
		if err != nil {
			return Pushed{}, err
		}
		if err := sig.Push(ctx, repo); err != nil {
			return Pushed{}, explain(ref+":"+sig.Tag, opts.Registry, err)
		}
		p.Signature = ref + ":" + sig.Tag + "@" + sig.Digest.String()
	}
	return p, nil
}

func newClient(opts Options) (*auth.Client, error) {
	cred := opts.Credentials
	if cred == nil {
		store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
		if err != nil {
			return nil, fmt.Errorf("read docker credentials (DOCKER_CONFIG or ~/.docker/config.json): %w", err)
		}
		cred = credentials.Credential(store)
	}
	return &auth.Client{
		Client:     opts.Net.RegistryClient(opts.Transport, opts.Registry.Insecure),
		Cache:      auth.NewCache(),
		Credential: cred,
		Header:     http.Header{"User-Agent": {"relcue-release"}},
	}, nil
}

// explain turns transport and registry errors into what to check.
func explain(ref string, r Registry, err error) error {
	var errResp *errcode.ErrorResponse
	var opErr *net.OpError
	var deadline *netx.DeadlineError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &deadline):
		return fmt.Errorf("push %s: registry %s stopped answering: %w", ref, r.Host, err)
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("push %s: registry %s is unreachable: %w; check that it runs and that --registry or registry.host names it", ref, r.Host, err)
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return fmt.Errorf("push %s: the registry asks for credentials and the docker config has none for %s (HTTP 401): %w; log in with `oras login %s` or `docker login %s`", ref, r.Host, err, r.Host, r.Host)
	case errors.As(err, &errResp) && (errResp.StatusCode == http.StatusUnauthorized || errResp.StatusCode == http.StatusForbidden):
		return fmt.Errorf("push %s: the registry refused the credentials (HTTP %d): %w; log in with `oras login %s` or `docker login %s`", ref, errResp.StatusCode, err, r.Host, r.Host)
	case errors.As(err, &errResp):
		return fmt.Errorf("push %s: the registry answered HTTP %d: %w", ref, errResp.StatusCode, err)
	case !r.PlainHTTP && isHTTPResponseToHTTPS(err):
		return fmt.Errorf("push %s: %w; the registry speaks plain HTTP: set registry.plainHTTP or pass --plain-http", ref, err)
	}
	return fmt.Errorf("push %s: %w", ref, err)
}

func isHTTPResponseToHTTPS(err error) bool {
	var rhe tls.RecordHeaderError
	return errors.As(err, &rhe)
}
