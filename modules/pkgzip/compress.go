package pkgzip

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/flate"
	"golang.org/x/sync/errgroup"
)

// Entries are compressed pigz-style: cut into fixed chunks that workers
// deflate independently, each primed with the 32 KiB before it as a
// dictionary and ended with a sync flush (the last one with a final block),
// so that the concatenated outputs form one deflate stream. Chunk borders
// depend only on the data, never on the number of workers, so neither do
// the output bytes.
const (
	chunkSize = 1 << 20
	dictSize  = 32 << 10 // the deflate window
	// jobsPerWorker sizes the window of chunks in flight: enough to keep
	// every worker busy while the writer waits for the oldest chunk.
	jobsPerWorker = 4
)

// job is one chunk on its way from the reader through a compressor to the
// zip. Jobs are recycled, so at most the window's worth of memory is used.
type job struct {
	buf     []byte // dictionary followed by the chunk's data
	dictLen int
	final   bool // last chunk of its entry
	sum     entrySum
	out     bytes.Buffer
	err     error
	done    chan struct{} // closed once out or err is set
}

func (j *job) data() []byte { return j.buf[j.dictLen:] }

// entrySum is what the reader learned about an entry, carried by its final
// chunk.
type entrySum struct {
	crc    uint32
	sha256 string
	size   int64
}

// writeBatch writes queued entries, in order, to zw.
func (w *Writer) writeBatch(ctx context.Context, zw *zip.Writer, sp *spool, batch []*queued, digests map[string]Digest) error {
	if len(batch) == 0 {
		return nil
	}
	window := jobsPerWorker * w.opts.Workers
	free := make(chan *job, window)
	for range window {
		free <- &job{}
	}
	work := make(chan *job, window)
	ordered := make(chan *job, window)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(work)
		return readChunks(gctx, batch, free, work, ordered)
	})
	for range w.opts.Workers {
		g.Go(func() error { return compressChunks(gctx, w.opts.Level, work) })
	}
	g.Go(func() error {
		return w.writeEntries(gctx, zw, sp, batch, free, ordered, digests)
	})
	return g.Wait()
}

// readChunks reads every entry that needs compressing, in order, and hands
// its chunks to the compressors (work) and, in the same order, to the zip
// writer (ordered). Taking a job from free is what bounds memory.
func readChunks(ctx context.Context, batch []*queued, free <-chan *job, work, ordered chan<- *job) error {
	tail := make([]byte, 0, dictSize)
	for _, q := range batch {
		if q.raw != nil {
			continue
		}
		rc, err := q.open()
		if err != nil {
			return err
		}
		err = chunkEntry(ctx, q, rc, tail, free, work, ordered)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// chunkEntry reads one entry into jobs, hashing it on the way.
func chunkEntry(ctx context.Context, q *queued, r io.Reader, tail []byte, free <-chan *job, work, ordered chan<- *job) error {
	crc := crc32.NewIEEE()
	sha := sha256.New()
	var size int64
	tail = tail[:0]
	for {
		var j *job
		select {
		case j = <-free:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j.buf == nil {
			j.buf = make([]byte, 0, dictSize+chunkSize)
		}
		j.buf = append(j.buf[:0], tail...)
		j.dictLen = len(tail)
		n, err := io.ReadFull(r, j.buf[j.dictLen:j.dictLen+chunkSize])
		j.buf = j.buf[:j.dictLen+n]
		// A full chunk is never assumed final: the next read decides, at
		// the cost of an empty final chunk when the size is a multiple of
		// chunkSize.
		j.final = err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !j.final {
			return fmt.Errorf("reading %s for entry %q: %w", q.source(), q.name, err)
		}
		data := j.data()
		crc.Write(data)
		sha.Write(data)
		size += int64(n)
		if j.final {
			j.sum = entrySum{crc: crc.Sum32(), sha256: hex.EncodeToString(sha.Sum(nil)), size: size}
		} else {
			tail = append(tail[:0], data[len(data)-dictSize:]...)
		}
		j.out.Reset()
		j.err = nil
		j.done = make(chan struct{})
		// Neither send blocks: no more than the window's jobs exist.
		work <- j
		ordered <- j
		if j.final {
			return nil
		}
	}
}

// compressChunks deflates jobs until work is closed. Each worker owns one
// compressor and resets it per chunk; klauspost/compress guarantees that a
// reset compressor produces the same bytes as a new one.
func compressChunks(ctx context.Context, level int, work <-chan *job) error {
	fw, err := flate.NewWriter(io.Discard, level)
	if err != nil {
		return fmt.Errorf("deflate level %d: %w", level, err)
	}
	for {
		select {
		case j, ok := <-work:
			if !ok {
				return nil
			}
			j.err = compressChunk(fw, j)
			close(j.done)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func compressChunk(fw *flate.Writer, j *job) error {
	fw.ResetDict(&j.out, j.buf[:j.dictLen])
	if _, err := fw.Write(j.data()); err != nil {
		return fmt.Errorf("deflate: %w", err)
	}
	if j.final {
		return fw.Close()
	}
	// A sync flush ends the chunk on a byte boundary with the stream still
	// open, so the next chunk's output can follow it directly.
	return fw.Flush()
}

// writeEntries writes every entry of batch, in order: compressed entries
// from their chunks as they arrive, raw copies directly.
func (w *Writer) writeEntries(ctx context.Context, zw *zip.Writer, sp *spool, batch []*queued, free chan<- *job, ordered <-chan *job, digests map[string]Digest) error {
	for _, q := range batch {
		if q.raw != nil {
			if err := w.copyRaw(zw, q); err != nil {
				return err
			}
			digests[q.name] = q.rawDigest
			continue
		}
		sum, err := w.collectChunks(ctx, sp, free, ordered)
		if err != nil {
			return fmt.Errorf("compressing entry %q: %w", q.name, err)
		}
		if err := w.writeCompressed(zw, sp, q, sum); err != nil {
			return err
		}
		digests[q.name] = Digest{SHA256: sum.sha256, Size: sum.size}
	}
	return nil
}

// collectChunks gathers the compressed chunks of the next entry into sp.
func (w *Writer) collectChunks(ctx context.Context, sp *spool, free chan<- *job, ordered <-chan *job) (entrySum, error) {
	if err := sp.reset(); err != nil {
		return entrySum{}, err
	}
	for {
		var j *job
		select {
		case j = <-ordered:
		case <-ctx.Done():
			return entrySum{}, ctx.Err()
		}
		select {
		case <-j.done:
		case <-ctx.Done():
			return entrySum{}, ctx.Err()
		}
		if j.err != nil {
			return entrySum{}, j.err
		}
		if _, err := sp.Write(j.out.Bytes()); err != nil {
			return entrySum{}, err
		}
		w.progress(int64(len(j.data())))
		final, sum := j.final, j.sum
		free <- j
		if final {
			return sum, nil
		}
	}
}

// writeCompressed writes one entry: deflated if that made it smaller,
// stored otherwise (re-reading the source, which is cheaper than keeping a
// second copy of the data that turned out to be incompressible).
func (w *Writer) writeCompressed(zw *zip.Writer, sp *spool, q *queued, sum entrySum) error {
	size := uint64(sum.size)
	if uint64(sp.n) < size {
		fh := w.stamp.header(q.name, q.mode, zip.Deflate, sum.crc, uint64(sp.n), size)
		dst, err := zw.CreateRaw(fh)
		if err != nil {
			return fmt.Errorf("writing entry %q: %w", q.name, err)
		}
		if err := sp.writeTo(dst); err != nil {
			return fmt.Errorf("writing entry %q: %w", q.name, err)
		}
		return nil
	}
	fh := w.stamp.header(q.name, q.mode, zip.Store, sum.crc, size, size)
	dst, err := zw.CreateRaw(fh)
	if err != nil {
		return fmt.Errorf("writing entry %q: %w", q.name, err)
	}
	return copyStored(dst, q, sum)
}

var errChanged = errors.New("changed while the package was being written; make sure nothing modifies the inputs during a build")

func copyStored(dst io.Writer, q *queued, sum entrySum) error {
	rc, err := q.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	crc := crc32.NewIEEE()
	n, err := io.Copy(io.MultiWriter(dst, crc), io.LimitReader(rc, sum.size+1))
	if err != nil {
		return fmt.Errorf("writing entry %q from %s: %w", q.name, q.source(), err)
	}
	if n != sum.size || crc.Sum32() != sum.crc {
		return fmt.Errorf("entry %q: %s %w", q.name, q.source(), errChanged)
	}
	return nil
}

// copyRaw copies the compressed bytes of another zip's entry unchanged,
// under a normalized header.
func (w *Writer) copyRaw(zw *zip.Writer, q *queued) error {
	f := q.raw.File
	src, err := f.OpenRaw()
	if err != nil {
		return fmt.Errorf("entry %q: reading %s from %s: %w", q.name, q.raw.Name, q.raw.zipPath, err)
	}
	fh := w.stamp.header(q.name, q.mode, f.Method, f.CRC32, f.CompressedSize64, f.UncompressedSize64)
	dst, err := zw.CreateRaw(fh)
	if err != nil {
		return fmt.Errorf("writing entry %q: %w", q.name, err)
	}
	n, err := io.Copy(dst, src)
	if err == nil && uint64(n) != f.CompressedSize64 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("entry %q: copying %s from %s: %w", q.name, q.raw.Name, q.raw.zipPath, err)
	}
	w.progress(q.raw.Size)
	return nil
}
