package ingest

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/jackc/pglogrepl"

	"github.com/cdclake/cdclake/ingest/pgarrow"
)

// ordersRelation is a pgoutput Relation message for
// orders(id int8, customer_id int4, status text, amount numeric(12,2),
// created_at timestamptz, note text).
func ordersRelation() []byte {
	b := []byte{'R'}
	b = binary.BigEndian.AppendUint32(b, 16384)
	b = append(b, "public\x00orders\x00"...)
	b = append(b, 'd')
	cols := []struct {
		name   string
		oid    uint32
		typmod int32
	}{{"id", 20, -1}, {"customer_id", 23, -1}, {"status", 25, -1}, {"amount", 1700, (12<<16 | 2) + 4}, {"created_at", 1184, -1}, {"note", 25, -1}}
	b = binary.BigEndian.AppendUint16(b, uint16(len(cols)))
	for i, c := range cols {
		flag := byte(0)
		if i == 0 {
			flag = 1
		}
		b = append(b, flag)
		b = append(b, c.name+"\x00"...)
		b = binary.BigEndian.AppendUint32(b, c.oid)
		b = binary.BigEndian.AppendUint32(b, uint32(c.typmod))
	}
	return b
}

func ordersInsert(id int) []byte {
	vals := []string{fmt.Sprint(id), fmt.Sprint(id % 1000), "placed", fmt.Sprintf("%d.%02d", id%10000, id%100),
		"2026-01-01 10:11:12.123456+00", "note 0cc175b9c0f1b6a831c399e269772661"}
	b := []byte{'I'}
	b = binary.BigEndian.AppendUint32(b, 16384)
	b = append(b, 'N')
	b = binary.BigEndian.AppendUint16(b, uint16(len(vals)))
	for _, v := range vals {
		b = append(b, 't')
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

func benchDecoder(b *testing.B) *decoder {
	ctx := context.Background()
	d := newDecoder(pgarrow.NewRegistry(nil), func(context.Context, string, string) (uint64, bool, error) { return 0, true, nil })
	msg, err := pglogrepl.ParseV2(ordersRelation(), false)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.handle(ctx, unwrap(msg)); err != nil {
		b.Fatal(err)
	}
	d.begin(1, 100, time.Now())
	return d
}

// BenchmarkDecodeInsert measures pgoutput parsing plus decoding one insert
// into the Arrow builders: the hot path of streaming.
func BenchmarkDecodeInsert(b *testing.B) {
	ctx := context.Background()
	d := benchDecoder(b)
	raw := ordersInsert(12345)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var p rowParser
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg, err := p.parse(raw, false)
		if err != nil {
			b.Fatal(err)
		}
		if err := d.handle(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if d.rows >= 65536 {
			for _, tb := range d.cut(true).tables {
				tb.release()
			}
		}
	}
}

// BenchmarkParquetEncode measures writing a 64k-row batch of orders
// changes as zstd Parquet.
func BenchmarkParquetEncode(b *testing.B) {
	ctx := context.Background()
	d := benchDecoder(b)
	for i := 0; i < 65536; i++ {
		msg, _ := pglogrepl.ParseV2(ordersInsert(i), false)
		if err := d.handle(ctx, unwrap(msg)); err != nil {
			b.Fatal(err)
		}
	}
	rec := d.cut(true).tables[0].parts[0]
	defer rec.Release()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w, err := pqarrow.NewFileWriter(rec.Schema(), io.Discard, props, pqarrow.DefaultWriterProps())
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Write(rec); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rec.NumRows())*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
