package rest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pglogrepl"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
)

// shopLake builds a lake from a small shop database: two tables, a schema
// change, updates and deletes.
func shopLake(t *testing.T) *lakeFixture {
	t.Helper()
	f := newLake(t)
	url := f.source(t, "shop",
		"CREATE TABLE orders (id int PRIMARY KEY, amount numeric(10,2), note text, tags text[])",
		"CREATE TABLE customers (id bigint PRIMARY KEY, name text)")
	f.pg.Exec(t, "shop",
		"INSERT INTO orders SELECT g, g * 1.5, 'n' || g, ARRAY['a','b'] FROM generate_series(1, 50) g",
		"INSERT INTO customers VALUES (1, 'ann'), (2, 'bob')")
	if err := f.ingest(url); err != nil {
		t.Fatal(err)
	}
	f.pg.Exec(t, "shop",
		"ALTER TABLE orders ADD COLUMN shipped_at timestamptz",
		"UPDATE orders SET shipped_at = now() WHERE id <= 10",
		"DELETE FROM orders WHERE id > 45",
		"UPDATE customers SET name = 'bo' WHERE id = 2")
	if err := f.ingest(url); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAPI(t *testing.T) {
	f := shopLake(t)
	ctx := context.Background()
	clk := &clock{}
	ts := f.server(t, Options{Now: clk.Now})
	rec, err := f.cat.Source(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	ordersID := lakeformat.ChangelogIdent("shop", "public", "orders")
	orders, err := f.cat.Iceberg().LoadTable(ctx, ordersID)
	if err != nil {
		t.Fatal(err)
	}
	rows := scanChanges(t, f.cat, ordersID)

	t.Run("sources", func(t *testing.T) {
		var got struct{ Sources []Source }
		get(t, ts, "", "/v1/sources", http.StatusOK, &got)
		if len(got.Sources) != 1 {
			t.Fatalf("sources: %+v", got.Sources)
		}
		s := got.Sources[0]
		if s.Name != "shop" || s.Slot != rec.Slot || s.Watermark.LSN != rec.LSN || s.Watermark.CommitTime == nil ||
			!s.Watermark.CommitTime.Equal(rec.CommitTime) || s.State != "active" || s.LagSeconds == nil || s.SlotLagBytes != nil {
			t.Errorf("source = %+v, catalog has %+v", s, rec)
		}
		var one Source
		get(t, ts, "", "/v1/sources/shop", http.StatusOK, &one)
		if one.Watermark.LSNText != s.Watermark.LSNText {
			t.Errorf("one source %+v", one)
		}
		get(t, ts, "", "/v1/sources/nope", http.StatusNotFound, nil)
	})

	t.Run("tables", func(t *testing.T) {
		var got struct {
			Tables        []Table
			NextPageToken *string `json:"next_page_token"`
		}
		get(t, ts, "", "/v1/tables", http.StatusOK, &got)
		var names []string
		for _, tb := range got.Tables {
			names = append(names, tb.Source+"."+tb.Schema+"."+tb.Name)
		}
		if !slices.Equal(names, []string{"shop.public.customers", "shop.public.orders"}) || got.NextPageToken != nil {
			t.Fatalf("tables = %v (next %v)", names, got.NextPageToken)
		}
		o := got.Tables[1]
		if o.Changelog == nil || o.Changelog.Rows != int64(len(rows)) || o.Rows != nil || o.Snapshot != nil ||
			o.SchemaVersion != orders.Schema().ID || !slices.Equal(o.PrimaryKey, []string{"id"}) {
			t.Errorf("orders = %+v (changelog %+v), want %d changes, schema %d", o, o.Changelog, len(rows), orders.Schema().ID)
		}
		if o.LastChange == nil || o.LastChange.LSN == nil || fmt.Sprint(*o.LastChange.LSN) != orders.Properties()[lakeformat.PropSourceLSN] {
			t.Errorf("last change %+v, table property %s", o.LastChange, orders.Properties()[lakeformat.PropSourceLSN])
		}

		// paging and filters
		var p1, p2 struct {
			Tables        []Table
			NextPageToken *string `json:"next_page_token"`
		}
		get(t, ts, "", "/v1/tables?limit=1", http.StatusOK, &p1)
		if len(p1.Tables) != 1 || p1.NextPageToken == nil {
			t.Fatalf("page 1: %+v", p1)
		}
		get(t, ts, "", "/v1/tables?limit=1&page_token="+*p1.NextPageToken, http.StatusOK, &p2)
		if len(p2.Tables) != 1 || p2.Tables[0].Name != "orders" || p2.NextPageToken != nil {
			t.Fatalf("page 2: %+v", p2)
		}
		get(t, ts, "", "/v1/tables?source=other", http.StatusOK, &p1)
		if len(p1.Tables) != 0 {
			t.Errorf("source filter: %+v", p1.Tables)
		}
		get(t, ts, "", "/v1/tables?page_token=zzz", http.StatusBadRequest, nil)
		get(t, ts, "", "/v1/tables?limit=0", http.StatusBadRequest, nil)

		var one Table
		get(t, ts, "", "/v1/tables/shop/public/orders", http.StatusOK, &one)
		if one.Changelog.MetadataLocation != orders.MetadataLocation() {
			t.Errorf("table: %+v", one.Changelog)
		}
		get(t, ts, "", "/v1/tables/shop/public/nope", http.StatusNotFound, nil)
	})

	t.Run("schema", func(t *testing.T) {
		var sc Schema
		get(t, ts, "", "/v1/tables/shop/public/orders/schema", http.StatusOK, &sc)
		types := map[string]string{}
		for _, c := range sc.Columns {
			if !c.CDC {
				types[c.Name] = *c.PGType + " / " + c.LakeType
			}
		}
		want := map[string]string{"id": "integer / int", "amount": "numeric(10,2) / decimal(10, 2)", "note": "text / string",
			"tags": "text[] / list<string>", "shipped_at": "timestamp with time zone / timestamptz"}
		if fmt.Sprint(types) != fmt.Sprint(want) {
			t.Errorf("columns = %v, want %v", types, want)
		}
		if sc.SchemaID != orders.Schema().ID || len(sc.History) != len(orders.Metadata().Schemas()) || len(sc.History) < 2 {
			t.Fatalf("schema %d with %d versions, table has %d and %d", sc.SchemaID, len(sc.History), orders.Schema().ID, len(orders.Metadata().Schemas()))
		}
		last := sc.History[len(sc.History)-1]
		if !last.Current || !slices.Contains(last.Changes, "added shipped_at timestamptz") || last.Since == nil {
			t.Errorf("last version %+v", last)
		}
	})

	t.Run("snapshots", func(t *testing.T) {
		var got struct {
			Kind      string
			Snapshots []Snapshot
		}
		get(t, ts, "", "/v1/tables/shop/public/orders/snapshots?kind=changelog", http.StatusOK, &got)
		if len(got.Snapshots) != len(orders.Metadata().Snapshots()) {
			t.Fatalf("%d snapshots, table has %d", len(got.Snapshots), len(orders.Metadata().Snapshots()))
		}
		last := got.Snapshots[len(got.Snapshots)-1]
		if !last.Current || last.ID != orders.CurrentSnapshot().SnapshotID || last.Rows == nil || *last.Rows != int64(len(rows)) ||
			last.WatermarkLSN == nil || last.Files == nil {
			t.Errorf("last snapshot %+v", last)
		}
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		get(t, ts, "", "/v1/tables/shop/public/orders/snapshots?kind=changelog&since="+future, http.StatusOK, &got)
		if len(got.Snapshots) != 0 {
			t.Errorf("since filter kept %d", len(got.Snapshots))
		}
		get(t, ts, "", "/v1/tables/shop/public/orders/snapshots", http.StatusOK, &got) // no snapshot table yet
		if got.Kind != "snapshot" || len(got.Snapshots) != 0 {
			t.Errorf("snapshot table snapshots: %+v", got)
		}
		get(t, ts, "", "/v1/tables/shop/public/orders/snapshots?kind=x", http.StatusBadRequest, nil)
	})

	// expected partitions, from the rows themselves
	type part struct {
		rows     int64
		min, max int64
	}
	want := map[time.Time]*part{}
	for _, r := range rows {
		h := r.commitTS.Truncate(time.Hour)
		p := want[h]
		if p == nil {
			p = &part{min: r.lsn, max: r.lsn}
			want[h] = p
		}
		p.rows++
		p.min, p.max = min(p.min, r.lsn), max(p.max, r.lsn)
	}
	type partitionsAnswer struct {
		CompleteThrough *time.Time `json:"complete_through"`
		GraceSeconds    int        `json:"grace_seconds"`
		Partitions      []Partition
	}
	var parts partitionsAnswer
	t.Run("partitions", func(t *testing.T) {
		get(t, ts, "", "/v1/tables/shop/public/orders/partitions", http.StatusOK, &parts)
		if len(parts.Partitions) != len(want) || parts.GraceSeconds != 300 || parts.CompleteThrough == nil {
			t.Fatalf("partitions %+v, want %d", parts, len(want))
		}
		for _, p := range parts.Partitions {
			w := want[p.Hour]
			if w == nil || p.Rows != w.rows || p.MinLSN == nil || int64(*p.MinLSN) != w.min || int64(*p.MaxLSN) != w.max ||
				p.Closed || !p.End.Equal(p.Hour.Add(time.Hour)) || p.Version == 0 || p.SnapshotID == 0 {
				t.Errorf("partition %+v, want %+v", p, w)
			}
		}
	})
	if t.Failed() {
		return
	}
	latest := parts.Partitions[len(parts.Partitions)-1]

	t.Run("manifest", func(t *testing.T) {
		var m Manifest
		get(t, ts, "", latest.Manifest, http.StatusOK, &m)
		// exactly the live files of the hour, as the scan planner sees them
		tasks, err := orders.Scan().PlanFiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var planned, listed []string
		for _, task := range tasks {
			if hourOfTask(task) == latest.Hour.Unix()/3600 {
				planned = append(planned, task.File.FilePath())
			}
		}
		var sum int64
		for _, fl := range m.Files {
			listed = append(listed, fl.URL)
			sum += fl.Rows
			if !underRoot(f.lakeDir, fl.URL) || fl.Key == nil || fl.Download == nil || fl.Checksum == nil {
				t.Fatalf("file %+v", fl)
			}
			// the file holds only rows of the hour, and its LSN range is right
			data, err := os.ReadFile(f.loc.Path + "/" + *fl.Key)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.Sum256(data)
			if hex.EncodeToString(h[:]) != *fl.Checksum || int64(len(data)) != fl.Bytes {
				t.Errorf("%s: checksum %s, bytes %d; file has %x, %d", *fl.Key, *fl.Checksum, fl.Bytes, h, len(data))
			}
			got := readParquetRows(t, data)
			if int64(len(got)) != fl.Rows {
				t.Errorf("%s: %d rows, manifest says %d", *fl.Key, len(got), fl.Rows)
			}
			for _, r := range got {
				if r.commitTS.Truncate(time.Hour) != latest.Hour || r.lsn < int64(*fl.MinLSN) || r.lsn > int64(*fl.MaxLSN) {
					t.Errorf("%s: row %+v outside hour %v or LSNs %d..%d", *fl.Key, r, latest.Hour, *fl.MinLSN, *fl.MaxLSN)
				}
			}
			if lo, hi, err := footerLSN(iceio.LocalFS{}, fl.URL); err != nil || *lo != *fl.MinLSN || *hi != *fl.MaxLSN {
				t.Errorf("%s: Parquet footer gives LSNs %v..%v (%v), column bounds %d..%d", *fl.Key, lo, hi, err, *fl.MinLSN, *fl.MaxLSN)
			}
			if dl := download(t, ts, "", *fl.Download); string(dl) != string(data) {
				t.Errorf("download of %s differs", *fl.Key)
			}
		}
		slices.Sort(planned)
		slices.Sort(listed)
		if !slices.Equal(planned, listed) || sum != want[latest.Hour].rows || m.Rows != sum || m.Checksum != "sha256" {
			t.Errorf("manifest files %v (%d rows), planner %v (%d rows)", listed, sum, planned, want[latest.Hour].rows)
		}
		// other spellings of the hour, and misses
		get(t, ts, "", strings.TrimSuffix(latest.Manifest, latest.Hour.Format(HourFormat))+latest.Hour.Format("2006-01-02-15"), http.StatusOK, nil)
		get(t, ts, "", strings.TrimSuffix(latest.Manifest, latest.Hour.Format(HourFormat))+"1999-01-01T00", http.StatusNotFound, nil)
		get(t, ts, "", strings.TrimSuffix(latest.Manifest, latest.Hour.Format(HourFormat))+"yesterday", http.StatusBadRequest, nil)
		get(t, ts, "", "/v1/objects/catalog.db", http.StatusNotFound, nil)
		get(t, ts, "", "/v1/objects/..%2Fcatalog.db", http.StatusNotFound, nil)
	})

	t.Run("closes when the source is caught up past the hour", func(t *testing.T) {
		// the process running the source says it is caught up, as of now
		ts := f.server(t, Options{Now: clk.Now,
			SourceStatus: func(ctx context.Context, s catalog.Source) (SourceStatus, error) {
				return SourceStatus{CaughtUpAt: clk.Now()}, nil
			}})
		closesAt := latest.Hour.Add(time.Hour + DefaultGrace)
		for _, c := range []struct {
			now    time.Time
			closed bool
		}{{closesAt.Add(-time.Second), false}, {closesAt, true}, {closesAt.Add(time.Hour), true}} {
			clk.Set(c.now)
			var got partitionsAnswer
			get(t, ts, "", "/v1/tables/shop/public/orders/partitions", http.StatusOK, &got)
			p := got.Partitions[len(got.Partitions)-1]
			if p.Closed != c.closed || !p.ClosesAt.Equal(closesAt) {
				t.Errorf("at %v: closed=%v closes_at=%v, want %v", c.now, p.Closed, p.ClosesAt, c.closed)
			}
			var closed partitionsAnswer
			get(t, ts, "", "/v1/tables/shop/public/orders/partitions?closed=true", http.StatusOK, &closed)
			if (len(closed.Partitions) == len(got.Partitions)) != c.closed {
				t.Errorf("at %v: closed filter kept %d of %d", c.now, len(closed.Partitions), len(got.Partitions))
			}
		}
		clk.Set(time.Time{})
	})

	t.Run("closes when the watermark reaches a sampled WAL position", func(t *testing.T) {
		// how a process that can query the source wires SourceStatus
		var wal WALTracker
		ts := f.server(t, Options{SourceStatus: func(ctx context.Context, s catalog.Source) (SourceStatus, error) {
			return SourceStatus{CaughtUpAt: wal.CaughtUpAt(s.LSN)}, nil
		}})
		f.pg.CreateDB(t, "other")
		f.pg.Exec(t, "other", "CREATE TABLE moves_wal (i int)") // WAL moves past the watermark of shop
		var pos pglogrepl.LSN
		if err := f.pg.QueryRow("shop", "SELECT pg_current_wal_lsn()", &pos); err != nil {
			t.Fatal(err)
		}
		closesAt := latest.Hour.Add(time.Hour + DefaultGrace)
		wal.Observe(closesAt, uint64(pos)) // as if sampled when the hour's grace ran out
		var m Manifest
		get(t, ts, "", latest.Manifest, http.StatusOK, &m)
		if m.Closed {
			t.Fatalf("closed before the watermark reached the sampled position")
		}
		if err := f.ingest(f.urls["shop"]); err != nil { // an idle source: the catch-up only moves the watermark
			t.Fatal(err)
		}
		get(t, ts, "", latest.Manifest, http.StatusOK, &m)
		if !m.Closed || m.Rows != latest.Rows {
			t.Errorf("manifest %+v: want closed with %d rows", m, latest.Rows)
		}
		rec, err = f.cat.Source(ctx, "shop")
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("closes when the watermark passes the hour", func(t *testing.T) {
		closesAt := latest.Hour.Add(time.Hour + DefaultGrace)
		// a later transaction moves the watermark's commit time (the catalog
		// call ingest makes), past the hour's end plus the grace period
		if err := f.cat.SetWatermark(ctx, "shop", rec.LSN, closesAt.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		var m Manifest
		get(t, ts, "", latest.Manifest, http.StatusOK, &m)
		if m.Closed {
			t.Errorf("closed one second early")
		}
		if err := f.cat.SetWatermark(ctx, "shop", rec.LSN, closesAt); err != nil {
			t.Fatal(err)
		}
		get(t, ts, "", latest.Manifest, http.StatusOK, &m)
		if !m.Closed || m.Version != latest.Version {
			t.Errorf("manifest %+v: want closed, version %d", m, latest.Version)
		}
	})

	t.Run("health and metrics", func(t *testing.T) {
		get(t, ts, "", "/healthz", http.StatusOK, nil)
		get(t, ts, "", "/readyz", http.StatusOK, nil)
		body := string(get(t, ts, "", "/metrics", http.StatusOK, nil))
		for _, want := range []string{
			fmt.Sprintf(`cdclake_source_watermark_lsn{source="shop"} %s`, strconv.FormatFloat(float64(rec.LSN), 'g', -1, 64)),
			`cdclake_source_watermark_lag_seconds{source="shop"}`,
			`cdclake_tables{kind="changelog",source="shop"} 2`,
			`cdclake_catalog_up 1`,
			`cdclake_http_requests_total{code="200",method="GET",route="GET /v1/sources"}`,
			`go_goroutines`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})
}

func hourOfTask(task table.FileScanTask) int64 {
	for _, v := range task.File.Partition() {
		switch v := v.(type) {
		case int:
			return int64(v)
		case int32:
			return int64(v)
		}
	}
	return -1
}

// readParquetRows reads the _cdc_lsn and _cdc_commit_ts of a Parquet file.
func readParquetRows(t *testing.T, data []byte) []changeRow {
	t.Helper()
	at := readParquet(t, data)
	defer at.Release()
	return changeRows(t, at)
}

// readParquet reads a whole Parquet file.
func readParquet(t *testing.T, data []byte) arrow.Table {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1024}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	at, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return at
}
