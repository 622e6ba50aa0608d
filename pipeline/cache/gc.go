package cache

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// EntryInfo describes an entry for `release cache ls`.
type EntryInfo struct {
	Key      string    `json:"key"`
	Target   string    `json:"target"`
	Kind     string    `json:"kind"`
	Size     int64     `json:"size"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"lastUsed"`
	Files    int       `json:"files"`
}

// List returns every entry, most recently used first. Entries whose
// meta.json cannot be read are listed with Kind "corrupt".
func (s *Store) List() ([]EntryInfo, error) {
	var out []EntryInfo
	shards, err := os.ReadDir(filepath.Join(s.root, "entries"))
	if err != nil {
		return nil, err
	}
	for _, sh := range shards {
		ents, err := os.ReadDir(filepath.Join(s.root, "entries", sh.Name()))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			out = append(out, s.info(e.Name()))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LastUsed.Equal(out[j].LastUsed) {
			return out[i].LastUsed.After(out[j].LastUsed)
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

func (s *Store) info(key string) EntryInfo {
	dir := s.entryDir(key)
	ei := EntryInfo{Key: key, Kind: "corrupt"}
	st, err := os.Stat(filepath.Join(dir, metaName))
	if err == nil {
		ei.LastUsed = st.ModTime().UTC()
	}
	raw, err := os.ReadFile(filepath.Join(dir, metaName))
	var m Meta
	if err == nil && json.Unmarshal(raw, &m) == nil && m.Key == key {
		ei.Target, ei.Kind, ei.Created, ei.Files = m.Target, m.Kind, m.Created, len(m.Files)
	}
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			ei.Size += fi.Size()
		}
		return nil
	})
	return ei
}

// GCOptions selects what gc removes. Zero values disable a rule.
type GCOptions struct {
	// MaxAge removes entries not used for longer than this.
	MaxAge time.Duration
	// MaxSize removes least recently used entries until the cache is no
	// larger than this many bytes.
	MaxSize int64
	// All removes every entry.
	All    bool
	DryRun bool
	Now    time.Time
}

// GCReport says what gc removed (or would remove, in a dry run).
type GCReport struct {
	Removed      []EntryInfo `json:"removed"`
	FreedBytes   int64       `json:"freedBytes"`
	Kept         int         `json:"kept"`
	KeptBytes    int64       `json:"keptBytes"`
	SkippedInUse []string    `json:"skippedInUse"`
	TempRemoved  int         `json:"tempRemoved"`
}

// GC removes entries by age and size. Entries in use by a running build
// (locked) are skipped, never removed from under it. Temps of builds that
// no longer run are removed too; a running build's are not (cleanTemp).
func (s *Store) GC(opts GCOptions) (*GCReport, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	var total int64
	for _, e := range list {
		total += e.Size
	}
	rep := &GCReport{Removed: []EntryInfo{}, SkippedInUse: []string{}}
	// Oldest first so the size rule drops least recently used entries.
	sort.SliceStable(list, func(i, j int) bool { return list[i].LastUsed.Before(list[j].LastUsed) })
	for _, e := range list {
		drop := opts.All || e.Kind == "corrupt" ||
			(opts.MaxAge > 0 && opts.Now.Sub(e.LastUsed) > opts.MaxAge) ||
			(opts.MaxSize > 0 && total > opts.MaxSize)
		if !drop {
			rep.Kept++
			rep.KeptBytes += e.Size
			continue
		}
		if !opts.DryRun {
			removed, err := s.remove(e.Key)
			if err != nil {
				return rep, err
			}
			if !removed {
				rep.SkippedInUse = append(rep.SkippedInUse, e.Key)
				rep.Kept++
				rep.KeptBytes += e.Size
				continue
			}
		}
		total -= e.Size
		rep.Removed = append(rep.Removed, e)
		rep.FreedBytes += e.Size
	}
	if !opts.DryRun {
		n, err := s.cleanTemp(opts.Now)
		rep.TempRemoved = n
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// remove deletes an entry if nobody holds its lock.
func (s *Store) remove(key string) (bool, error) {
	lp := filepath.Join(s.root, "locks", key+".lock")
	f, err := os.OpenFile(lp, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return false, err
	}
	defer f.Close()
	ok, err := lockFile(f, true, false)
	if err != nil || !ok {
		return false, err
	}
	defer unlockFile(f)
	if err := os.RemoveAll(s.entryDir(key)); err != nil {
		return false, fmt.Errorf("remove cache entry %s: %w", short(key), err)
	}
	s.mu.Lock()
	delete(s.verified, key)
	s.mu.Unlock()
	// The lock file goes too. A builder that opened it just before is
	// still safe: entries are committed by an atomic rename, so at worst
	// two builders make the same bytes and one rename loses.
	os.Remove(lp)
	return true, nil
}

// legacyTempAge is how long gc leaves a temp that carries no lease (made
// by a release from before leases) alone: its maker cannot be asked, so
// only a temp nobody has touched for this long is taken to be abandoned.
const legacyTempAge = 24 * time.Hour

// cleanTemp removes the temps (v1/tmp) of builds that no longer run: those
// whose lease nobody holds (lease.go). A running build's scratch dirs and
// in-flight downloads are never removed, however old.
func (s *Store) cleanTemp(now time.Time) (int, error) {
	ents, err := os.ReadDir(s.TempDir())
	if err != nil {
		return 0, err
	}
	r := s.newReaper()
	defer r.finish()
	n := 0
	for _, e := range ents {
		p := filepath.Join(s.TempDir(), e.Name())
		id, ok := leaseOf(e.Name())
		if !ok {
			info, err := e.Info()
			if err != nil || now.Sub(info.ModTime()) < legacyTempAge {
				continue
			}
		} else if !r.abandoned(id) {
			continue
		}
		if os.RemoveAll(p) == nil {
			n++
		}
	}
	return n, nil
}
