package chaos

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
)

// FileCheck is the verdict on one data file of a table.
type FileCheck struct {
	Path string
	Rows int64
	Err  error // nil when the file is whole
}

// VerifyTable reads every data file of the table's current snapshot and
// checks what can be checked without a checksum in the manifest: the
// object's size is the manifest's, its Parquet footer parses, its row
// count is the manifest's, and every page of every column decodes. It
// also checks that no file is listed twice. It returns one FileCheck per
// file; the error is for failures to read the table's metadata.
func VerifyTable(ctx context.Context, tbl *table.Table) ([]FileCheck, error) {
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		return nil, nil
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, fmt.Errorf("open table files: %w", err)
	}
	manifests, err := snap.Manifests(fs)
	if err != nil {
		return nil, fmt.Errorf("read manifest list: %w", err)
	}
	var out []FileCheck
	seen := map[string]bool{}
	for _, m := range manifests {
		entries, err := m.FetchEntries(fs, true)
		if err != nil {
			return nil, fmt.Errorf("read manifest %s: %w", m.FilePath(), err)
		}
		for _, e := range entries {
			df := e.DataFile()
			fc := FileCheck{Path: df.FilePath(), Rows: df.Count()}
			if seen[df.FilePath()] {
				fc.Err = errors.New("listed twice in the table's manifests")
			} else {
				fc.Err = verifyFile(ctx, fs, df)
			}
			seen[df.FilePath()] = true
			out = append(out, fc)
		}
	}
	return out, nil
}

func verifyFile(ctx context.Context, fs iceio.IO, df iceberg.DataFile) (err error) {
	defer func() {
		if r := recover(); r != nil { // a reader that panics on a bad file still names it
			err = fmt.Errorf("reading the file panicked: %v", r)
		}
	}()
	f, err := fs.Open(df.FilePath())
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if st.Size() != df.FileSizeBytes() {
		return fmt.Errorf("%d bytes, the manifest says %d", st.Size(), df.FileSizeBytes())
	}
	pf, err := file.NewParquetReader(f)
	if err != nil {
		return fmt.Errorf("parquet footer: %w", err)
	}
	defer pf.Close()
	if pf.NumRows() != df.Count() {
		return fmt.Errorf("%d rows, the manifest says %d", pf.NumRows(), df.Count())
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("parquet schema: %w", err)
	}
	at, err := fr.ReadTable(ctx)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	defer at.Release()
	if at.NumRows() != df.Count() {
		return fmt.Errorf("%d rows decoded, the manifest says %d", at.NumRows(), df.Count())
	}
	return nil
}
