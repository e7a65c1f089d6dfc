package pgarrow

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// fakeCatalog answers the registry's pg_type and format_type queries
// from a map and counts them.
type fakeCatalog struct {
	mu      sync.Mutex
	types   map[uint32][]any // typname, typtype, typcategory, typelem, typbasetype, typtypmod, typdelim, typlen, format_type
	queries map[uint32]int
	fail    bool
}

type fakeRow struct {
	vals []any
	err  error
}

func (r fakeRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	if len(dest) != len(r.vals) {
		return fmt.Errorf("scan %d values into %d", len(r.vals), len(dest))
	}
	for i, d := range dest {
		switch p := d.(type) {
		case *string:
			*p = r.vals[i].(string)
		case *uint32:
			*p = r.vals[i].(uint32)
		case *int32:
			*p = r.vals[i].(int32)
		case *int16:
			*p = r.vals[i].(int16)
		default:
			return fmt.Errorf("unexpected destination %T", d)
		}
	}
	return nil
}

func (f *fakeCatalog) QueryRow(_ context.Context, sql string, args ...any) pgx.Row {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return fakeRow{err: errors.New("connection lost")}
	}
	oid := args[0].(uint32)
	if sql != typeQuery {
		return fakeRow{vals: []any{fmt.Sprintf("%s(%d)", f.types[oid][0], args[1].(int32))}}
	}
	f.queries[oid]++
	v, ok := f.types[oid]
	if !ok {
		return fakeRow{err: pgx.ErrNoRows}
	}
	return fakeRow{vals: v}
}

func newFakeCatalog() *fakeCatalog {
	return &fakeCatalog{
		queries: map[uint32]int{},
		types: map[uint32][]any{
			// name, typtype, category, elem, base, basemod, delim, len, format_type
			90001: {"mood", "e", "E", uint32(0), uint32(0), int32(-1), ",", int16(4), "mood"},
			90002: {"_mood", "b", "A", uint32(90001), uint32(0), int32(-1), ",", int16(-1), "mood[]"},
			90003: {"price", "d", "N", uint32(0), uint32(oidNumeric), numericMod(12, 2), ",", int16(-1), "price"},
			90004: {"_price", "b", "A", uint32(90003), uint32(0), int32(-1), ",", int16(-1), "price[]"},
			90005: {"cents", "d", "N", uint32(0), uint32(90003), int32(-1), ",", int16(-1), "cents"}, // domain over domain
			90006: {"pair", "c", "C", uint32(0), uint32(0), int32(-1), ",", int16(-1), "pair"},
			90007: {"citext", "b", "S", uint32(0), uint32(0), int32(-1), ",", int16(-1), "citext"},
			90008: {"intarr", "d", "A", uint32(0), uint32(1007), int32(-1), ",", int16(-1), "intarr"}, // domain over int[]
			90009: {"geometry", "b", "U", uint32(0), uint32(0), int32(-1), ":", int16(-1), "geometry"},
			90010: {"_geometry", "b", "A", uint32(90009), uint32(0), int32(-1), ",", int16(-1), "geometry[]"},
			90011: {"tsz", "d", "D", uint32(0), uint32(oidTimestampTZ), int32(-1), ",", int16(8), "tsz"},
			90012: {"loop", "d", "N", uint32(0), uint32(90012), int32(-1), ",", int16(-1), "loop"}, // corrupt: domain over itself
		},
	}
}

func TestRegistryCatalog(t *testing.T) {
	fc := newFakeCatalog()
	reg := NewRegistry(fc)
	ctx := context.Background()
	tests := []struct {
		oid    uint32
		mod    int32
		name   string
		arrow  string
		values []string
		want   string
	}{
		{90001, -1, "mood", "utf8", []string{"happy"}, "happy"},
		{90002, -1, "mood[]", "list<element: utf8, nullable>", []string{"{sad,happy}"}, "[sad happy]"},
		{90003, -1, "price", "decimal(12, 2)", []string{"12.34"}, "1234"},
		{90004, -1, "price[]", "list<element: decimal(12, 2), nullable>", []string{"{1.5,NULL}"}, "[150 NULL]"},
		{90005, -1, "cents", "decimal(12, 2)", []string{"-0.01"}, "-1"},
		{90006, -1, "pair", "utf8", []string{`(1,"a b")`}, `(1,"a b")`},
		{90007, -1, "citext", "utf8", []string{"MiXeD"}, "MiXeD"},
		{90008, -1, "intarr", "list<element: int32, nullable>", []string{"{1,2}"}, "[1 2]"},
		{90010, -1, "geometry[]", "list<element: utf8, nullable>", []string{"{POINT(1 2):POINT(3 4)}"}, "[POINT(1 2) POINT(3 4)]"},
		{90011, -1, "tsz", "timestamp[us, tz=UTC]", []string{"1970-01-01 00:00:01+00"}, "1000000"},
		{90009, 7, "geometry(7)", "utf8", []string{"POINT(1 2)"}, "POINT(1 2)"},
		{99999, -1, "unknown (oid 99999)", "utf8", []string{"whatever"}, "whatever"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := reg.Column(ctx, tt.oid, tt.mod)
			if err != nil {
				t.Fatal(err)
			}
			if c.PGType() != tt.name || c.ArrowType().String() != tt.arrow {
				t.Fatalf("got %q %s, want %q %s", c.PGType(), c.ArrowType(), tt.name, tt.arrow)
			}
			got, err := decode(t, c, tt.values...)
			if err != nil {
				t.Fatal(err)
			}
			if got[0] != tt.want {
				t.Fatalf("decoded %q, want %q", got[0], tt.want)
			}
		})
	}
	// every OID was looked up once, however often it was needed
	for i := 0; i < 3; i++ {
		for _, tt := range tests {
			if _, err := reg.Column(ctx, tt.oid, tt.mod); err != nil {
				t.Fatal(err)
			}
		}
	}
	for oid, n := range fc.queries {
		if n != 1 {
			t.Errorf("oid %d looked up %d times", oid, n)
		}
	}
	if _, err := reg.Column(ctx, 90012, -1); err == nil {
		t.Error("a domain over itself resolved")
	}
}

func TestRegistryErrors(t *testing.T) {
	fc := newFakeCatalog()
	fc.fail = true
	reg := NewRegistry(fc)
	if _, err := reg.Column(context.Background(), 90001, -1); err == nil {
		t.Fatal("want an error when the catalog query fails")
	}
	// built-ins never query
	if _, err := reg.Column(context.Background(), oidInt4, -1); err != nil {
		t.Fatal(err)
	}
	// the failure was not cached
	fc.fail = false
	if c, err := reg.Column(context.Background(), 90001, -1); err != nil || c.PGType() != "mood" {
		t.Fatalf("after recovery: %v, %v", c, err)
	}
}

func TestRegistryConcurrent(t *testing.T) {
	fc := newFakeCatalog()
	reg := NewRegistry(fc)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, oid := range []uint32{90001, 90002, 90004, 90005, 1007, oidNumeric} {
				if _, err := reg.Column(context.Background(), oid, -1); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for oid, n := range fc.queries {
		if n != 1 {
			t.Errorf("oid %d looked up %d times", oid, n)
		}
	}
}
