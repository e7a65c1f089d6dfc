package pgarrow

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is satisfied by *pgx.Conn and *pgxpool.Pool.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Registry resolves type OIDs (built-ins without a query; domains -> base
// type, enums -> string, arrays -> element type, composite/range/unknown
// -> string) by looking pg_type up once per OID and caching.
//
// A Registry is safe for concurrent use. With a nil Querier every type
// that is not built in maps to string.
type Registry struct {
	q     Querier
	mu    sync.Mutex
	types map[uint32]*catalogType // pg_type rows; nil value: no such type
	names map[typeKey]string      // format_type(oid, typmod) of non-built-ins
}

type typeKey struct {
	oid uint32
	mod int32
}

// catalogType is the part of a pg_type row that decides the decoding.
type catalogType struct {
	name     string // format_type(oid, NULL)
	typtype  byte   // b base, c composite, d domain, e enum, p pseudo, r range, m multirange
	category byte   // typcategory; 'A' for arrays
	elem     uint32 // typelem
	base     uint32 // typbasetype (domains)
	baseMod  int32  // typtypmod (domains)
	delim    byte   // typdelim
	length   int16  // typlen
}

// maxDepth bounds domain/array nesting, in case a catalog is corrupt.
const maxDepth = 32

// NewRegistry returns a registry that looks unknown OIDs up with q.
func NewRegistry(q Querier) *Registry {
	return &Registry{
		q:     q,
		types: make(map[uint32]*catalogType),
		names: make(map[typeKey]string),
	}
}

// Column returns a decoder for values of type oid with modifier typmod
// (-1 for none), as given by pg_attribute or a pgoutput Relation message.
// Every call returns a new Column.
func (r *Registry) Column(ctx context.Context, oid uint32, typmod int32) (*Column, error) {
	c, err := r.resolve(ctx, oid, typmod, 0)
	if err != nil {
		return nil, fmt.Errorf("resolve type %d: %w", oid, err)
	}
	return c, nil
}

// Columns returns one Column per field of a query result. PostgreSQL
// reports a domain column as its base type here, so prefer the types
// from pg_attribute when the domain name (PGType) matters; the values
// decode the same either way.
func (r *Registry) Columns(ctx context.Context, fields []pgconn.FieldDescription) ([]*Column, error) {
	cols := make([]*Column, len(fields))
	for i, f := range fields {
		c, err := r.Column(ctx, f.DataTypeOID, f.TypeModifier)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", f.Name, err)
		}
		cols[i] = c
	}
	return cols, nil
}

func (r *Registry) resolve(ctx context.Context, oid uint32, mod int32, depth int) (*Column, error) {
	if depth > maxDepth {
		return nil, errors.New("type nesting too deep")
	}
	if bi, ok := builtins[oid]; ok {
		t := Type{OID: oid, Mod: mod, Name: builtinName(oid, mod), Base: oid, BaseMod: mod}
		if bi.kind != kList {
			return newScalar(t, bi.kind), nil
		}
		elem, err := r.resolve(ctx, bi.elem, mod, depth+1)
		if err != nil {
			return nil, err
		}
		delim := bi.delim
		if delim == 0 {
			delim = ','
		}
		return newList(t, elem, delim), nil
	}
	ct, err := r.catalog(ctx, oid)
	if err != nil {
		return nil, err
	}
	if ct == nil {
		name := "unknown (oid " + strconv.FormatUint(uint64(oid), 10) + ")"
		return newScalar(Type{OID: oid, Mod: mod, Name: name, Base: oid, BaseMod: mod}, kString), nil
	}
	name, err := r.name(ctx, oid, mod, ct)
	if err != nil {
		return nil, err
	}
	t := Type{OID: oid, Mod: mod, Name: name, Base: oid, BaseMod: mod}
	switch {
	case ct.typtype == 'd' && ct.base != 0:
		bmod := mod
		if bmod < 0 {
			bmod = ct.baseMod
		}
		c, err := r.resolve(ctx, ct.base, bmod, depth+1)
		if err != nil {
			return nil, err
		}
		c.typ.OID, c.typ.Mod, c.typ.Name = oid, mod, name
		return c, nil
	case ct.category == 'A' && ct.elem != 0 && ct.length == -1:
		elem, err := r.resolve(ctx, ct.elem, mod, depth+1)
		if err != nil {
			return nil, err
		}
		delim, err := r.delim(ctx, ct.elem)
		if err != nil {
			return nil, err
		}
		return newList(t, elem, delim), nil
	default:
		// enums, composites, ranges, multiranges, pseudo types and base
		// types of extensions (citext, hstore, geometry, ...)
		return newScalar(t, kString), nil
	}
}

// delim returns the array delimiter of element type oid.
func (r *Registry) delim(ctx context.Context, oid uint32) (byte, error) {
	if bi, ok := builtins[oid]; ok {
		if bi.delim != 0 {
			return bi.delim, nil
		}
		return ',', nil
	}
	ct, err := r.catalog(ctx, oid)
	if err != nil {
		return 0, err
	}
	if ct == nil || ct.delim == 0 {
		return ',', nil
	}
	return ct.delim, nil
}

const typeQuery = `SELECT typname::text, typtype::text, typcategory::text, typelem, typbasetype,
	typtypmod, typdelim::text, typlen, format_type(oid, NULL)
FROM pg_catalog.pg_type WHERE oid = $1`

// catalog returns the pg_type row of oid, querying it at most once.
func (r *Registry) catalog(ctx context.Context, oid uint32) (*catalogType, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ct, ok := r.types[oid]; ok {
		return ct, nil
	}
	if r.q == nil {
		r.types[oid] = nil
		return nil, nil
	}
	var (
		typname, typtype, category, delim, name string
		elem, base                              uint32
		baseMod                                 int32
		length                                  int16
	)
	err := r.q.QueryRow(ctx, typeQuery, oid).Scan(&typname, &typtype, &category,
		&elem, &base, &baseMod, &delim, &length, &name)
	if errors.Is(err, pgx.ErrNoRows) {
		r.types[oid] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("query pg_type: %w", err)
	}
	ct := &catalogType{name: name, elem: elem, base: base, baseMod: baseMod, length: length}
	if typtype != "" {
		ct.typtype = typtype[0]
	}
	if category != "" {
		ct.category = category[0]
	}
	if delim != "" {
		ct.delim = delim[0]
	}
	r.types[oid] = ct
	return ct, nil
}

// name is format_type(oid, mod) for a type from the catalog.
func (r *Registry) name(ctx context.Context, oid uint32, mod int32, ct *catalogType) (string, error) {
	if mod < 0 || r.q == nil {
		return ct.name, nil
	}
	k := typeKey{oid, mod}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.names[k]; ok {
		return n, nil
	}
	var n string
	if err := r.q.QueryRow(ctx, "SELECT format_type($1, $2)", oid, mod).Scan(&n); err != nil {
		return "", fmt.Errorf("query format_type: %w", err)
	}
	r.names[k] = n
	return n, nil
}
