package rest

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/lakeformat"
)

// dataFile is what the API needs of one live data file of a changelog.
type dataFile struct {
	url            string
	hour           int64 // hours since the epoch
	hasHour        bool
	rows, bytes    int64
	minLSN, maxLSN *uint64
	snapshotID     int64 // the snapshot that added the file
	seq            int64 // the file's sequence number
}

// fileCache keeps the live files of recently read table snapshots: a
// snapshot never changes, so its entry is valid for good.
type fileCache struct {
	mu sync.Mutex
	m  map[string][]dataFile
}

const fileCacheSize = 256

func (c *fileCache) get(key string) ([]dataFile, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.m[key]
	return f, ok
}

func (c *fileCache) put(key string, files []dataFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= fileCacheSize {
		c.m = map[string][]dataFile{}
	}
	c.m[key] = files
}

// liveFiles returns the data files of the table's current snapshot, with
// their hour partition and _cdc_lsn range (from column bounds, else from
// the Parquet footer).
func (r *Reader) liveFiles(ctx context.Context, tbl *table.Table) ([]dataFile, error) {
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		return nil, nil
	}
	key := fmt.Sprintf("%s/%d", tbl.Metadata().TableUUID(), snap.SnapshotID)
	if files, ok := r.files.get(key); ok {
		return files, nil
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, fmt.Errorf("open table files: %w", err)
	}
	manifests, err := snap.Manifests(fs)
	if err != nil {
		return nil, fmt.Errorf("read manifest list: %w", err)
	}
	sc := tbl.Schema()
	lsnID, tsID := -1, -1
	if f, ok := sc.FindFieldByName(lakeformat.ColLSN); ok {
		lsnID = f.ID
	}
	if f, ok := sc.FindFieldByName(lakeformat.ColCommitTS); ok {
		tsID = f.ID
	}
	var files []dataFile
	for _, m := range manifests {
		if m.ManifestContent() != iceberg.ManifestContentData {
			continue
		}
		entries, err := m.FetchEntries(fs, true)
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		for _, e := range entries {
			df := e.DataFile()
			f := dataFile{url: df.FilePath(), rows: df.Count(), bytes: df.FileSizeBytes(), snapshotID: e.SnapshotID(), seq: e.SequenceNum()}
			if s := e.FileSequenceNum(); s != nil {
				f.seq = *s
			}
			f.hour, f.hasHour = hourOf(tbl.Metadata().PartitionSpecByID(int(df.SpecID())), tsID, df.Partition())
			f.minLSN, f.maxLSN = boundLSN(df.LowerBoundValues()[lsnID]), boundLSN(df.UpperBoundValues()[lsnID])
			if (f.minLSN == nil || f.maxLSN == nil) && lsnID >= 0 {
				if f.minLSN, f.maxLSN, err = footerLSN(fs, f.url); err != nil {
					r.o.Logger.Warn("no LSN range for a data file", "file", f.url, "err", err)
				}
			}
			files = append(files, f)
		}
	}
	r.files.put(key, files)
	return files, nil
}

// hourOf returns a file's hour partition value (hours since the epoch).
func hourOf(spec *iceberg.PartitionSpec, tsID int, partition map[int]any) (int64, bool) {
	if spec == nil || tsID < 0 {
		return 0, false
	}
	for _, pf := range spec.FieldsBySourceID(tsID) {
		if _, ok := pf.Transform.(iceberg.HourTransform); !ok {
			continue
		}
		switch v := partition[pf.FieldID].(type) {
		case int:
			return int64(v), true
		case int32:
			return int64(v), true
		case int64:
			return v, true
		}
	}
	return 0, false
}

// boundLSN decodes an Iceberg single-value bound of a long column.
func boundLSN(b []byte) *uint64 {
	if len(b) != 8 {
		return nil
	}
	v := binary.LittleEndian.Uint64(b)
	return &v
}

// footerLSN reads the _cdc_lsn range from a Parquet file's row group
// statistics, for files whose Iceberg entry has no column bounds.
func footerLSN(fs iceio.IO, path string) (lo, hi *uint64, err error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	pr, err := file.NewParquetReader(f)
	if err != nil {
		return nil, nil, fmt.Errorf("read parquet footer: %w", err)
	}
	defer pr.Close()
	md := pr.MetaData()
	col := md.Schema.ColumnIndexByName(lakeformat.ColLSN)
	if col < 0 {
		return nil, nil, fmt.Errorf("no %s column", lakeformat.ColLSN)
	}
	if md.NumRowGroups() == 0 {
		return nil, nil, fmt.Errorf("no row groups")
	}
	var first, last uint64
	for i := 0; i < md.NumRowGroups(); i++ {
		cc, err := md.RowGroup(i).ColumnChunk(col)
		if err != nil {
			return nil, nil, err
		}
		st, err := cc.Statistics()
		if err != nil {
			return nil, nil, err
		}
		s, ok := st.(*metadata.Int64Statistics)
		if !ok || !s.HasMinMax() {
			return nil, nil, fmt.Errorf("row group %d has no %s statistics", i, lakeformat.ColLSN)
		}
		if i == 0 || uint64(s.Min()) < first {
			first = uint64(s.Min())
		}
		if i == 0 || uint64(s.Max()) > last {
			last = uint64(s.Max())
		}
	}
	return &first, &last, nil
}

// objectKey returns the lake key of a file URL, false when the URL is not
// a valid key under the lake root. File URLs are percent-decoded, as
// iceberg-go's local IO does; S3 keys are taken raw, as its S3 IO does.
func objectKey(loc lake.Location, raw string) (string, bool) {
	var rel string
	switch loc.Scheme {
	case "file":
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "file" || (u.Host != "" && u.Host != "localhost") {
			return "", false
		}
		root := strings.TrimSuffix(filepath.ToSlash(loc.Path), "/") + "/"
		var ok bool
		if rel, ok = strings.CutPrefix(u.Path, root); !ok {
			return "", false
		}
	case "s3":
		root := "s3://" + loc.Bucket + "/"
		if loc.Prefix != "" {
			root += loc.Prefix + "/"
		}
		var ok bool
		if rel, ok = strings.CutPrefix(raw, root); !ok {
			return "", false
		}
	default:
		return "", false
	}
	if lake.ValidateKey(rel) != nil {
		return "", false
	}
	return rel, true
}
