package pgarrow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// Helpers of TestPostgres: decoding rows, comparing them, and reading
// the same rows through COPY and pgoutput.

// build decodes text rows into a record.
func build(t *testing.T, schema *arrow.Schema, cols []*Column, rows [][][]byte) arrow.RecordBatch {
	t.Helper()
	rb := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer rb.Release()
	for _, row := range rows {
		for i, v := range row {
			if err := cols[i].Append(rb.Field(i), v); err != nil {
				t.Fatalf("%s: %v", pgCols[i].name, err)
			}
		}
	}
	return rb.NewRecordBatch()
}

func compareRecords(t *testing.T, what string, want [][]string, rec arrow.RecordBatch, got ...[]string) {
	t.Helper()
	if rec != nil {
		got = recordCells(rec)
		rec.Release()
	}
	for i := range want {
		if d := diffCells(want[i], got[i]); d != "" {
			t.Errorf("%s: %s: %s", what, pgCols[i].name, d)
		}
	}
}

func diffCells(want, got []string) string {
	if len(want) != len(got) {
		return fmt.Sprintf("%d rows, want %d", len(got), len(want))
	}
	for r := range want {
		if want[r] != got[r] {
			return fmt.Sprintf("row %d: got %q, want %q", r+1, clip(got[r]), clip(want[r]))
		}
	}
	return ""
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// compareRef checks decoded values against what PostgreSQL computes for
// the same rows without going through its text output.
func compareRef(ctx context.Context, t *testing.T, conn *pgx.Conn, cells [][]string) {
	exprs := make([]string, len(pgCols))
	for i, pc := range pgCols {
		scalar := func(v string) string {
			return "CASE WHEN " + v + " IS NULL THEN NULL ELSE (" + strings.ReplaceAll(pc.ref, "{}", v) + ") END"
		}
		if pc.list {
			arr := pc.name
			if pc.typ == "pair[]" {
				arr += "::text[]" // unnest would expand the composite into columns
			}
			exprs[i] = fmt.Sprintf(`CASE WHEN %[1]s IS NULL THEN NULL ELSE (SELECT coalesce(json_agg(%[2]s ORDER BY o), '[]')::text
				FROM unnest(%[3]s) WITH ORDINALITY u(x, o)) END`, pc.name, scalar("x"), arr)
		} else {
			exprs[i] = scalar(pc.name)
		}
	}
	if _, err := conn.Exec(ctx, "SET IntervalStyle = iso_8601"); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM t ORDER BY id", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	r := 0
	for rows.Next() {
		vals := rows.RawValues()
		for i, pc := range pgCols {
			want := "NULL"
			if vals[i] != nil {
				want = string(vals[i])
			}
			if pc.list && vals[i] != nil {
				var elems []*string
				if err := json.Unmarshal(vals[i], &elems); err != nil {
					t.Fatalf("%s: %v", pc.name, err)
				}
				parts := make([]string, len(elems))
				for j, e := range elems {
					parts[j] = "NULL"
					if e != nil {
						parts[j] = *e
					}
				}
				want = "[" + strings.Join(parts, " ") + "]"
			}
			got := cells[i][r]
			if got != want {
				t.Errorf("%s row %d: decoded %q, PostgreSQL computes %q", pc.name, r+1, clip(got), clip(want))
			}
		}
		r++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// copyRows splits COPY text format output into fields, undoing its
// escapes (\N is NULL).
func copyRows(t *testing.T, data []byte) [][][]byte {
	var rows [][][]byte
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		var row [][]byte
		for _, f := range bytes.Split(line, []byte("\t")) {
			if string(f) == `\N` {
				row = append(row, nil)
				continue
			}
			out := []byte{}
			for i := 0; i < len(f); i++ {
				if f[i] != '\\' || i+1 == len(f) {
					out = append(out, f[i])
					continue
				}
				i++
				switch c := f[i]; c {
				case 'b':
					out = append(out, '\b')
				case 'f':
					out = append(out, '\f')
				case 'n':
					out = append(out, '\n')
				case 'r':
					out = append(out, '\r')
				case 't':
					out = append(out, '\t')
				case 'v':
					out = append(out, '\v')
				default:
					if c >= '0' && c <= '7' {
						v := 0
						for k := 0; k < 3 && i < len(f) && f[i] >= '0' && f[i] <= '7'; k++ {
							v = v*8 + int(f[i]-'0')
							i++
						}
						i--
						out = append(out, byte(v))
					} else {
						out = append(out, c)
					}
				}
			}
			row = append(row, out)
		}
		if len(row) != len(pgCols) {
			t.Fatalf("COPY row has %d fields, want %d", len(row), len(pgCols))
		}
		rows = append(rows, row)
	}
	return rows
}

// pgoutputRows reads the inserts from slot s as pgoutput sends them
// (text format) and returns their values in pgCols order, checking the
// Relation message's column types resolve like pg_attribute's.
func pgoutputRows(ctx context.Context, t *testing.T, conn *pgx.Conn, reg *Registry, cols []*Column) [][][]byte {
	rows, err := conn.Query(ctx, `SELECT data FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL,
		'proto_version', '1', 'publication_names', 'p')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var (
		out   [][][]byte
		index []int // relation column -> pgCols index
	)
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			t.Fatal(err)
		}
		msg, err := pglogrepl.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pglogrepl.RelationMessage:
			index = make([]int, len(m.Columns))
			for i, rc := range m.Columns {
				index[i] = -1
				for j, pc := range pgCols {
					if pc.name == rc.Name {
						index[i] = j
						c, err := reg.Column(ctx, rc.DataType, rc.TypeModifier)
						if err != nil {
							t.Fatal(err)
						}
						if c.PGType() != cols[j].PGType() || !arrow.TypeEqual(c.ArrowType(), cols[j].ArrowType()) {
							t.Errorf("pgoutput %s: %s %s, want %s %s", rc.Name, c.PGType(), c.ArrowType(), cols[j].PGType(), cols[j].ArrowType())
						}
					}
				}
			}
		case *pglogrepl.InsertMessage:
			row := make([][]byte, len(pgCols))
			for i, tc := range m.Tuple.Columns {
				if index[i] < 0 {
					continue
				}
				switch tc.DataType {
				case 't':
					row[index[i]] = bytes.Clone(tc.Data)
					if row[index[i]] == nil {
						row[index[i]] = []byte{}
					}
				case 'n':
				default:
					t.Fatalf("pgoutput column kind %q", tc.DataType)
				}
			}
			out = append(out, row)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
