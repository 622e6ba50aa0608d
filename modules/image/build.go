package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/relcue/release/internal/parallel"
)

// builder assembles the image(s) of one spec. Layer tars go to tmp, which
// the caller removes.
type builder struct {
	spec    *Spec
	sources map[string]string
	tmp     string
	date    time.Time
	workers int
	// closers release the base, whose layers are read until the archive
	// is written.
	closers []func() error
}

func (b *builder) close() {
	for _, c := range b.closers {
		c()
	}
}

// platformBuild is one platform's image in the making.
type platformBuild struct {
	platform v1.Platform
	base     *baseImage
	// baseLayers are the base's layers as they are written.
	baseLayers  []v1.Layer
	baseDescs   []v1.Descriptor
	baseDiffIDs []v1.Hash
	// own are the layers of ours this platform gets, in order: which
	// spec layer, and which written tar holds it.
	own []ownLayer
}

type ownLayer struct {
	spec int // index in Spec.Layers
	job  int // index in buildImage's layer jobs
}

// layerJob is one distinct layer tar to write. Platforms share a job when
// their entries are identical, which they are unless base images differ
// in the directories the layer writes into.
type layerJob struct {
	entries []entry
	built   *builtLayer
}

// buildImage returns the image (one platform) or the index (several):
// our layers collected, the bases opened and scanned for the paths ours
// write, each distinct layer tar written once, then each platform's image
// composed.
func (b *builder) buildImage(ctx context.Context) (any, error) {
	contents, need, err := b.collectLayers()
	if err != nil {
		return nil, err
	}
	builds, err := b.platformBuilds()
	if err != nil {
		return nil, err
	}
	if err := b.attachBase(ctx, builds); err != nil {
		return nil, err
	}
	records, err := b.scanBases(ctx, builds, need)
	if err != nil {
		return nil, err
	}
	jobs, err := b.layerJobs(builds, contents, records)
	if err != nil {
		return nil, err
	}
	if err := b.writeLayers(ctx, jobs); err != nil {
		return nil, err
	}
	return b.compose(builds, jobs)
}

// collectLayers reads what each spec layer adds, and the paths all of
// them write (which the base layers are scanned for).
func (b *builder) collectLayers() ([]*layerContent, map[string]bool, error) {
	contents := make([]*layerContent, len(b.spec.Layers))
	need := map[string]bool{}
	for i, l := range b.spec.Layers {
		c, err := collectLayer(l, b.sources[l.Source])
		if err != nil {
			return nil, nil, layerErr(i, l, err)
		}
		contents[i] = c
		for _, p := range c.paths() {
			need[p] = true
		}
	}
	return contents, need, nil
}

func (b *builder) platformBuilds() ([]*platformBuild, error) {
	builds := make([]*platformBuild, len(b.spec.Platforms))
	for i, s := range b.spec.Platforms {
		p, _, err := parsePlatform(s)
		if err != nil {
			return nil, err
		}
		builds[i] = &platformBuild{platform: p}
	}
	return builds, nil
}

// attachBase gives every platform its image of the base, if the spec has
// one, and prepares the base layers for writing.
func (b *builder) attachBase(ctx context.Context, builds []*platformBuild) error {
	if b.spec.Base == nil {
		return nil
	}
	store, err := openBase(b.spec.Base, b.sources[b.spec.Base.Source])
	if err != nil {
		return err
	}
	b.closers = append(b.closers, store.close)
	for _, pb := range builds {
		if pb.base, err = store.image(pb.platform); err != nil {
			return err
		}
	}
	return b.baseLayers(ctx, builds, store.what)
}

// layerJobs works out each platform's own layers on top of what its base
// holds (records) and returns the distinct layer tars to write.
func (b *builder) layerJobs(builds []*platformBuild, contents []*layerContent, records map[v1.Hash]*layerRecord) ([]*layerJob, error) {
	var jobs []*layerJob
	byPrint := map[string]int{}
	for _, pb := range builds {
		st := newFSState()
		for i := range pb.baseLayers {
			if rec := records[pb.baseDescs[i].Digest]; rec != nil {
				st.apply(rec, fmt.Sprintf("base layer %d", i+1))
			}
		}
		for i, l := range b.spec.Layers {
			if l.Platform != "" && l.Platform != pb.platform.String() {
				continue
			}
			entries, err := contents[i].entries(st)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", pb.platform.String(), layerErr(i, l, err))
			}
			st.applyOwn(entries, fmt.Sprintf("layer %d (%s)", i+1, l.Dest))
			fp := fingerprint(entries)
			j, ok := byPrint[fp]
			if !ok {
				j = len(jobs)
				byPrint[fp] = j
				jobs = append(jobs, &layerJob{entries: entries})
			}
			pb.own = append(pb.own, ownLayer{spec: i, job: j})
		}
	}
	return jobs, nil
}

// compose returns the one platform's image, or the index of several.
func (b *builder) compose(builds []*platformBuild, jobs []*layerJob) (any, error) {
	images := make([]v1.Image, len(builds))
	for i, pb := range builds {
		var err error
		if images[i], err = b.image(pb, jobs); err != nil {
			return nil, fmt.Errorf("%s: %w", pb.platform.String(), err)
		}
	}
	if len(images) == 1 {
		return images[0], nil
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, img := range images {
		p := builds[i].platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return idx, nil
}

// baseLayers prepares each platform's base layers for writing. Layers of
// an OCI base are copied byte for byte (verified against their digests as
// they are written). A docker-save tarball keeps layers as plain tar files
// addressed by diff ID; they are stored as uncompressed OCI layers, like
// ours, after checking their content against the diff IDs (docker save
// records no other checksum).
func (b *builder) baseLayers(ctx context.Context, builds []*platformBuild, what string) error {
	for _, pb := range builds {
		bi := pb.base
		if bi.docker {
			layers, err := bi.img.Layers()
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			for i, l := range layers {
				bl, err := spoolLayer(ctx, l, bi.config.RootFS.DiffIDs[i], b.tmp)
				if err != nil {
					return fmt.Errorf("%s: layer %d: %w", what, i+1, err)
				}
				pb.baseLayers = append(pb.baseLayers, bl)
				pb.baseDescs = append(pb.baseDescs, v1.Descriptor{MediaType: layerMediaType, Digest: bl.digest, Size: bl.size})
				pb.baseDiffIDs = append(pb.baseDiffIDs, bl.digest)
			}
			continue
		}
		for i, d := range bi.manifest.Layers {
			mt, err := ociLayerType(d.MediaType)
			if err != nil {
				return fmt.Errorf("%s: layer %d: %w", what, i+1, err)
			}
			inner, err := bi.img.LayerByDigest(d.Digest)
			if err != nil {
				return fmt.Errorf("%s: layer %d: %w", what, i+1, err)
			}
			d.MediaType = mt
			pb.baseLayers = append(pb.baseLayers, &baseLayer{Layer: inner, desc: d, diffID: bi.config.RootFS.DiffIDs[i]})
			pb.baseDescs = append(pb.baseDescs, d)
			pb.baseDiffIDs = append(pb.baseDiffIDs, bi.config.RootFS.DiffIDs[i])
		}
	}
	return nil
}

// scanBases reads each distinct base layer once for the paths our layers
// write (see fsState), in parallel.
func (b *builder) scanBases(ctx context.Context, builds []*platformBuild, need map[string]bool) (map[v1.Hash]*layerRecord, error) {
	records := map[v1.Hash]*layerRecord{}
	if len(need) == 0 {
		return records, nil
	}
	type scan struct {
		n      int // base layer number, for messages
		digest v1.Hash
		diffID v1.Hash
		layer  v1.Layer
		rec    *layerRecord
	}
	var scans []*scan
	for _, pb := range builds {
		for i, l := range pb.baseLayers {
			d := pb.baseDescs[i].Digest
			if _, ok := records[d]; !ok {
				records[d] = nil
				scans = append(scans, &scan{n: i + 1, digest: d, diffID: pb.baseDiffIDs[i], layer: l})
			}
		}
	}
	err := parallel.For(ctx, b.workers, scans, func(ctx context.Context, _ int, sc *scan) error {
		rec, err := scanLayer(ctx, sc.layer, sc.diffID, need)
		if err != nil {
			return fmt.Errorf("base layer %d (%s): %w", sc.n, sc.digest, err)
		}
		sc.rec = rec
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, sc := range scans {
		records[sc.digest] = sc.rec
	}
	return records, nil
}

func (b *builder) writeLayers(ctx context.Context, jobs []*layerJob) error {
	return parallel.For(ctx, b.workers, jobs, func(ctx context.Context, _ int, j *layerJob) error {
		bl, err := writeLayer(ctx, b.tmp, j.entries, b.date)
		j.built = bl
		return err
	})
}

// image composes one platform's image with ggcr: an empty OCI image, the
// base's layers and ours appended, and a config written in full (so that
// nothing of ggcr's defaults, such as an empty history entry per layer,
// leaks in).
func (b *builder) image(pb *platformBuild, jobs []*layerJob) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	var adds []mutate.Addendum
	for i, l := range pb.baseLayers {
		d := pb.baseDescs[i]
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: d.MediaType, Annotations: d.Annotations})
	}
	var history []v1.History
	for _, o := range pb.own {
		l := b.spec.Layers[o.spec]
		adds = append(adds, mutate.Addendum{Layer: jobs[o.job].built, MediaType: layerMediaType})
		what := "file"
		if l.Dir {
			what = "directory"
		}
		history = append(history, v1.History{
			Created:   v1.Time{Time: b.date},
			CreatedBy: fmt.Sprintf("release: add %s %s at %s", what, l.Source, l.Dest),
		})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	diffIDs := slices.Clone(pb.baseDiffIDs)
	for _, o := range pb.own {
		diffIDs = append(diffIDs, jobs[o.job].built.digest)
	}
	img, err = mutate.ConfigFile(img, b.config(pb, diffIDs, history))
	if err != nil {
		return nil, err
	}
	if pb.base != nil {
		ann := map[string]string{annotationBaseDigest: pb.base.digest.String()}
		if b.spec.Base.Ref != "" {
			ann[annotationBaseName] = b.spec.Base.Ref
		}
		annotated, ok := mutate.Annotations(img, ann).(v1.Image)
		if !ok {
			return nil, fmt.Errorf("go-containerregistry's mutate.Annotations returned no image (library change?)")
		}
		img = annotated
	}
	return img, nil
}

// config is the base's config (or an empty one) with the platform, the
// build date, our layers and our settings. Settings follow Dockerfile
// semantics over a base: env and labels are merged (ours win), and
// setting an entrypoint without a cmd clears the base's cmd, which was
// written for the base's entrypoint.
func (b *builder) config(pb *platformBuild, diffIDs []v1.Hash, history []v1.History) *v1.ConfigFile {
	cf := &v1.ConfigFile{}
	if pb.base != nil {
		cf = pb.base.config.DeepCopy()
	}
	cf.OS, cf.Architecture, cf.Variant = pb.platform.OS, pb.platform.Architecture, pb.platform.Variant
	cf.Created = v1.Time{Time: b.date}
	cf.RootFS = v1.RootFS{Type: "layers", DiffIDs: diffIDs}
	cf.History = append(cf.History, history...)
	c := &cf.Config
	c.Env = mergeEnv(c.Env, b.spec.Env)
	if len(b.spec.Labels) > 0 {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for k, v := range b.spec.Labels {
			c.Labels[k] = v
		}
	}
	if b.spec.Entrypoint != nil {
		c.Entrypoint = b.spec.Entrypoint
		c.Cmd = nil
	}
	if b.spec.Cmd != nil {
		c.Cmd = b.spec.Cmd
	}
	if b.spec.WorkingDir != "" {
		c.WorkingDir = b.spec.WorkingDir
	}
	if b.spec.User != "" {
		c.User = b.spec.User
	}
	return cf
}

// mergeEnv keeps the base's variables in their order, replacing the
// values we set, and appends our new ones sorted by name.
func mergeEnv(base []string, ours map[string]string) []string {
	if len(ours) == 0 {
		return base
	}
	out := make([]string, 0, len(base)+len(ours))
	done := map[string]bool{}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if v, ok := ours[k]; ok {
			kv = k + "=" + v
			done[k] = true
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(ours))
	for k := range ours {
		if !done[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, k+"="+ours[k])
	}
	return out
}

// fingerprint identifies a layer's content before it is written.
func fingerprint(entries []entry) string {
	h := sha256.New()
	for _, e := range entries {
		fmt.Fprintf(h, "%q %o %d %d %q\n", e.tarName(), e.mode, e.uid, e.gid, e.src)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkDigestRef enforces what a digest reference promises: the archive
// holds exactly that manifest or index.
func checkDigestRef(ref string, got v1.Hash) error {
	r, err := parseRef(ref)
	if err != nil {
		return err
	}
	d, ok := r.(name.Digest)
	if !ok || d.DigestStr() == got.String() {
		return nil
	}
	return fmt.Errorf("image %s is pinned by digest, but these inputs build %s; change the reference's digest to it, or restore the inputs that produced %s", ref, got, d.DigestStr())
}

// baseLayer is a base image's layer as it is written: its own bytes under
// an OCI media type, and the diff ID from the base's config (ggcr would
// otherwise decompress the layer to compute it).
type baseLayer struct {
	v1.Layer
	desc   v1.Descriptor
	diffID v1.Hash
}

func (l *baseLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *baseLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *baseLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *baseLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }

// spoolLayer writes a layer's uncompressed content to a file in dir and
// checks it against diffID.
func spoolLayer(ctx context.Context, l v1.Layer, diffID v1.Hash, dir string) (_ *builtLayer, err error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	f, err := os.CreateTemp(dir, "base-*.tar")
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), &ctxReader{ctx, rc})
	if err != nil {
		return nil, err
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	if got != diffID {
		return nil, fmt.Errorf("content has diff ID %s but the config says %s; the tarball is damaged", got, diffID)
	}
	return &builtLayer{path: f.Name(), digest: got, size: n}, nil
}
