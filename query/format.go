package query

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Output formats of a result.
const (
	FormatJSON    = "json"
	FormatCSV     = "csv"
	FormatTable   = "table"
	FormatParquet = "parquet"
	FormatArrow   = "arrow"
)

// FreshnessKey is the Parquet and Arrow schema metadata key holding a
// result's freshness as JSON.
const FreshnessKey = "cdclake.freshness"

var contentTypes = map[string]string{
	FormatJSON:    "application/json",
	FormatCSV:     "text/csv; charset=utf-8",
	FormatTable:   "text/plain; charset=utf-8",
	FormatParquet: "application/vnd.apache.parquet",
	FormatArrow:   "application/vnd.apache.arrow.stream",
}

// ContentType returns the media type of a format.
func ContentType(format string) string { return contentTypes[format] }

// FormatFromAccept picks a format from an HTTP Accept header: the first
// listed media type that names one. ok is false when none does.
func FormatFromAccept(accept string) (format string, ok bool) {
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json", "*/*", "application/*":
			return FormatJSON, true
		case "text/csv":
			return FormatCSV, true
		case "text/plain":
			return FormatTable, true
		case "application/vnd.apache.parquet", "application/x-parquet", "application/parquet":
			return FormatParquet, true
		case "application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file":
			return FormatArrow, true
		}
	}
	return "", false
}

// Write writes a result in a format.
func Write(w io.Writer, r *Result, format string) error {
	switch format {
	case FormatJSON, "":
		return WriteJSON(w, r)
	case FormatCSV:
		return WriteCSV(w, r)
	case FormatTable:
		return WriteTable(w, r)
	case FormatParquet:
		return WriteParquet(w, r)
	case FormatArrow:
		return WriteArrow(w, r)
	}
	return fmt.Errorf("unknown format %q (use json, csv, table, parquet or arrow)", format)
}

// freshnessJSON is Freshness as the JSON outputs show it.
type freshnessJSON struct {
	Source     string    `json:"source"`
	LSN        string    `json:"lsn"`
	CommitTime time.Time `json:"commit_time"`
}

// FreshnessJSON returns a result's freshness as a JSON array.
func FreshnessJSON(fs []Freshness) string {
	out := make([]freshnessJSON, len(fs))
	for i, f := range fs {
		out[i] = freshnessJSON{Source: f.Source, LSN: f.LSNString(), CommitTime: f.CommitTime}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// FreshnessHeader formats freshness for an HTTP header or a notice:
// "shop lsn=0/16B3748 commit-time=2026-01-02T03:04:05Z", one per source,
// comma-separated.
func FreshnessHeader(fs []Freshness) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("%s lsn=%s commit-time=%s", f.Source, f.LSNString(), f.CommitTime.Format(time.RFC3339Nano))
	}
	return strings.Join(parts, ", ")
}

// WriteJSON writes {"columns":[{"name","type"}],"rows":[[...]],
// "row_count":n,"freshness":[...],"elapsed_ms":n}. Integers, floats and
// decimals are JSON numbers (NaN and infinities strings), times RFC 3339
// strings, nested values JSON.
func WriteJSON(w io.Writer, r *Result) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(`{"columns":[`)
	for i, f := range r.Schema.Fields() {
		if i > 0 {
			bw.WriteByte(',')
		}
		name, _ := json.Marshal(f.Name)
		fmt.Fprintf(bw, `{"name":%s,"type":%q}`, name, TypeName(f.Type))
	}
	bw.WriteString(`],"rows":[`)
	first := true
	for _, rec := range r.Records {
		for row := 0; row < int(rec.NumRows()); row++ {
			if !first {
				bw.WriteByte(',')
			}
			first = false
			bw.WriteByte('[')
			for c := 0; c < int(rec.NumCols()); c++ {
				if c > 0 {
					bw.WriteByte(',')
				}
				bw.Write(jsonValue(rec.Column(c), row))
			}
			bw.WriteByte(']')
		}
	}
	fmt.Fprintf(bw, `],"row_count":%d,"freshness":%s,"elapsed_ms":%d}`+"\n", r.Rows, FreshnessJSON(r.Freshness), r.Elapsed.Milliseconds())
	return bw.Flush()
}

func jsonValue(arr arrow.Array, i int) []byte {
	if arr.IsNull(i) {
		return []byte("null")
	}
	quoted := func(s string) []byte { b, _ := json.Marshal(s); return b }
	switch a := arr.(type) {
	case *array.Boolean, *array.Int8, *array.Int16, *array.Int32, *array.Int64,
		*array.Uint8, *array.Uint16, *array.Uint32, *array.Uint64, *array.Decimal128, *array.Decimal256:
		s, _ := Text(arr, i)
		if s == "t" || s == "f" {
			return []byte(strconv.FormatBool(s == "t"))
		}
		return []byte(s)
	case *array.Float32, *array.Float64:
		var v float64
		if f, ok := a.(*array.Float32); ok {
			v = float64(f.Value(i))
		} else {
			v = a.(*array.Float64).Value(i)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			s, _ := Text(arr, i)
			return quoted(s)
		}
		return []byte(strconv.FormatFloat(v, 'g', -1, 64))
	case *array.Timestamp:
		typ := a.DataType().(*arrow.TimestampType)
		t := a.Value(i).ToTime(typ.Unit).UTC()
		if typ.TimeZone == "" {
			return quoted(t.Format("2006-01-02T15:04:05.999999"))
		}
		return quoted(t.Format(time.RFC3339Nano))
	case array.ListLike, *array.Struct, *array.Map:
		s, _ := Text(arr, i)
		return []byte(s)
	}
	s, _ := Text(arr, i)
	return quoted(s)
}

// WriteCSV writes a header row, then one line per row; NULL is empty.
func WriteCSV(w io.Writer, r *Result) error {
	cw := csv.NewWriter(w)
	names := make([]string, r.Schema.NumFields())
	for i, f := range r.Schema.Fields() {
		names[i] = f.Name
	}
	if err := cw.Write(names); err != nil {
		return err
	}
	row := make([]string, len(names))
	for _, rec := range r.Records {
		for i := 0; i < int(rec.NumRows()); i++ {
			for c := range row {
				row[c], _ = Text(rec.Column(c), i)
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes an aligned table like psql's, then the row count.
func WriteTable(w io.Writer, r *Result) error {
	fields := r.Schema.Fields()
	width := make([]int, len(fields))
	right := make([]bool, len(fields))
	for i, f := range fields {
		width[i] = utf8.RuneCountInString(f.Name)
		switch TypeName(f.Type) {
		case "smallint", "integer", "bigint", "numeric", "real", "double precision":
			right[i] = true
		}
	}
	var cells [][]string
	for _, rec := range r.Records {
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, len(fields))
			for c := range row {
				row[c], _ = Text(rec.Column(c), i)
				width[c] = max(width[c], utf8.RuneCountInString(row[c]))
			}
			cells = append(cells, row)
		}
	}
	bw := bufio.NewWriter(w)
	line := func(row []string, header bool) {
		for c, v := range row {
			if c > 0 {
				bw.WriteString("|")
			}
			pad := strings.Repeat(" ", width[c]-utf8.RuneCountInString(v))
			switch {
			case header:
				left := (width[c] - utf8.RuneCountInString(v)) / 2
				bw.WriteString(" " + strings.Repeat(" ", left) + v + pad[left:] + " ")
			case right[c]:
				bw.WriteString(" " + pad + v + " ")
			default:
				bw.WriteString(" " + v + pad + " ")
			}
		}
		bw.WriteString("\n")
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	line(names, true)
	for c := range fields {
		if c > 0 {
			bw.WriteString("+")
		}
		bw.WriteString(strings.Repeat("-", width[c]+2))
	}
	bw.WriteString("\n")
	for _, row := range cells {
		line(row, false)
	}
	if r.Rows == 1 {
		bw.WriteString("(1 row)\n")
	} else {
		fmt.Fprintf(bw, "(%d rows)\n", r.Rows)
	}
	return bw.Flush()
}

// schemaWithFreshness adds the freshness to the schema metadata.
func schemaWithFreshness(r *Result) *arrow.Schema {
	md := arrow.NewMetadata([]string{FreshnessKey}, []string{FreshnessJSON(r.Freshness)})
	return arrow.NewSchema(r.Schema.Fields(), &md)
}

// WriteParquet writes the result as one zstd Parquet file; the freshness
// is in the file's key-value metadata under FreshnessKey.
func WriteParquet(w io.Writer, r *Result) error {
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
	fw, err := pqarrow.NewFileWriter(r.Schema, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return fmt.Errorf("open parquet writer: %w", err)
	}
	for _, rec := range r.Records {
		if err := fw.WriteBuffered(rec); err != nil {
			fw.Close()
			return fmt.Errorf("write parquet: %w", err)
		}
	}
	if err := fw.AppendKeyValueMetadata(FreshnessKey, FreshnessJSON(r.Freshness)); err != nil {
		fw.Close()
		return fmt.Errorf("write parquet: %w", err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("close parquet writer: %w", err)
	}
	return nil
}

// WriteArrow writes the result as an Arrow IPC stream; the freshness is
// in the schema metadata under FreshnessKey.
func WriteArrow(w io.Writer, r *Result) error {
	sc := schemaWithFreshness(r)
	iw := ipc.NewWriter(w, ipc.WithSchema(sc))
	for _, rec := range r.Records {
		rb := array.NewRecordBatch(sc, rec.Columns(), rec.NumRows())
		err := iw.Write(rb)
		rb.Release()
		if err != nil {
			iw.Close()
			return fmt.Errorf("write arrow: %w", err)
		}
	}
	if err := iw.Close(); err != nil {
		return fmt.Errorf("write arrow: %w", err)
	}
	return nil
}
