package rest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cdclake/cdclake/catalog"
)

// HourFormat is how an hour partition is named in API paths, as in
// /v1/tables/shop/public/orders/partitions/2026-03-01T10.
const HourFormat = "2006-01-02T15"

// ParseHour reads an hour partition name: 2026-03-01T10, Iceberg's
// 2026-03-01-10, or an RFC 3339 time on the hour.
func ParseHour(s string) (time.Time, error) {
	for _, layout := range []string{HourFormat, "2006-01-02-15", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Truncate(time.Hour) != t {
				return time.Time{}, fmt.Errorf("partition %q does not start on the hour", s)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("partition %q: want an hour such as 2026-03-01T10", s)
}

// complete returns the time a table is complete through
// (TableCompleteThrough). Callers read it before the table's files: a
// copy not running when its record is read starts later, so its rows
// carry a later time than the source was complete through (give or take
// the clock skew the grace absorbs), and one done by then is in the files
// read after; so every row of a partition closed by this time is in
// those files.
func (r *Reader) complete(ctx context.Context, ref TableRef) (time.Time, error) {
	rec, err := r.o.Catalog.Source(ctx, ref.Source)
	if errors.Is(err, catalog.ErrNoSuchSource) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	complete := CompleteThrough(rec, r.status(ctx, rec))
	snaps, err := r.o.Catalog.Snapshots(ctx, ref.Source)
	if err != nil {
		return time.Time{}, err
	}
	for _, s := range snaps {
		if s.Source == ref.Source && s.Schema == ref.Schema && s.Table == ref.Table {
			return TableCompleteThrough(complete, &s), nil
		}
	}
	return complete, nil
}

// Partitions lists the hour partitions of a table's changelog, oldest
// first, and the time the table is complete through that closed them.
func (r *Reader) Partitions(ctx context.Context, ref TableRef) ([]Partition, time.Time, error) {
	files, complete, err := r.changelogFiles(ctx, ref)
	if err != nil {
		return nil, time.Time{}, err
	}
	byHour := map[int64][]dataFile{}
	for _, f := range files {
		if f.hasHour {
			byHour[f.hour] = append(byHour[f.hour], f)
		}
	}
	out := make([]Partition, 0, len(byHour))
	for h, fs := range byHour {
		out = append(out, r.partition(ref, h, fs, complete))
	}
	slices.SortFunc(out, func(a, b Partition) int { return a.Hour.Compare(b.Hour) })
	return out, complete, nil
}

func (r *Reader) changelogFiles(ctx context.Context, ref TableRef) ([]dataFile, time.Time, error) {
	lt, err := r.find(ctx, ref)
	if err != nil {
		return nil, time.Time{}, err
	}
	complete, err := r.complete(ctx, ref) // before the files (see complete)
	if err != nil {
		return nil, time.Time{}, err
	}
	tbl, err := r.load(ctx, lt.changelog)
	if err != nil || tbl == nil {
		return nil, time.Time{}, err
	}
	files, err := r.liveFiles(ctx, tbl)
	return files, complete, err
}

func (r *Reader) partition(ref TableRef, hour int64, files []dataFile, complete time.Time) Partition {
	start := time.Unix(hour*3600, 0).UTC()
	p := Partition{Hour: start, End: start.Add(time.Hour), Closed: Closed(start, complete, r.o.Grace),
		ClosesAt: ClosesAt(start, r.o.Grace), Files: len(files), Manifest: manifestPath(ref, start)}
	lsnKnown := true
	for _, f := range files {
		p.Rows += f.rows
		p.Bytes += f.bytes
		if f.seq > p.Version || (f.seq == p.Version && p.SnapshotID == 0) {
			p.Version, p.SnapshotID = f.seq, f.snapshotID
		}
		if f.minLSN == nil || f.maxLSN == nil {
			lsnKnown = false
			continue
		}
		if p.MinLSN == nil || *f.minLSN < *p.MinLSN {
			p.MinLSN = f.minLSN
		}
		if p.MaxLSN == nil || *f.maxLSN > *p.MaxLSN {
			p.MaxLSN = f.maxLSN
		}
	}
	if !lsnKnown {
		p.MinLSN, p.MaxLSN = nil, nil
	}
	return p
}

// Manifest returns the files of one hour partition of a table's changelog,
// with their checksums.
func (r *Reader) Manifest(ctx context.Context, ref TableRef, hour time.Time) (Manifest, error) {
	files, complete, err := r.changelogFiles(ctx, ref)
	if err != nil {
		return Manifest{}, err
	}
	h := hour.Unix() / 3600
	var in []dataFile
	for _, f := range files {
		if f.hasHour && f.hour == h {
			in = append(in, f)
		}
	}
	if len(in) == 0 {
		return Manifest{}, fmt.Errorf("partition %s of %s: %w", hour.Format(HourFormat), ref, ErrNotFound)
	}
	slices.SortFunc(in, func(a, b dataFile) int { return cmp.Or(cmp.Compare(a.seq, b.seq), cmp.Compare(a.url, b.url)) })
	p := r.partition(ref, h, in, complete)
	m := Manifest{Source: ref.Source, Schema: ref.Schema, Table: ref.Table, Hour: p.Hour, End: p.End, Closed: p.Closed,
		ClosesAt: p.ClosesAt, Rows: p.Rows, Bytes: p.Bytes, MinLSN: p.MinLSN, MaxLSN: p.MaxLSN, Version: p.Version,
		SnapshotID: p.SnapshotID, Checksum: "sha256", Files: make([]File, len(in))}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, f := range in {
		out := &m.Files[i]
		*out = File{URL: f.url, Bytes: f.bytes, Rows: f.rows, MinLSN: f.minLSN, MaxLSN: f.maxLSN, SnapshotID: f.snapshotID, SequenceNumber: f.seq}
		key, ok := objectKey(r.o.Location, f.url)
		if !ok {
			if r.o.Location.Scheme != "" {
				r.o.Logger.Warn("data file outside the lake root", "table", ref.String(), "file", f.url)
			}
			continue
		}
		out.Key = &key
		if r.sums == nil {
			continue // no bucket: no checksum, no download
		}
		dl := ObjectPath(key)
		out.Download = &dl
		g.Go(func() error {
			sum, err := r.sums.get(gctx, key, f.bytes)
			if err != nil {
				return fmt.Errorf("checksum of %s: %w", key, err)
			}
			out.Checksum = &sum
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// TablePath returns the API path of a table.
func TablePath(ref TableRef) string {
	return "/v1/tables/" + escapeSegment(ref.Source) + "/" + escapeSegment(ref.Schema) + "/" + escapeSegment(ref.Table)
}

func manifestPath(ref TableRef, hour time.Time) string {
	return TablePath(ref) + "/partitions/" + hour.UTC().Format(HourFormat)
}

// ObjectPath returns the API path that serves a lake object.
func ObjectPath(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = escapeSegment(s)
	}
	return "/v1/objects/" + strings.Join(segs, "/")
}

// escapeSegment escapes a name as one path segment; "." and ".." are
// escaped too, so no name is taken for a relative path.
func escapeSegment(s string) string {
	switch s {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(s)
}
