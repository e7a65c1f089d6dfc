package pgarrow

import (
	"strconv"
)

// Type is a resolved PostgreSQL column type.
type Type struct {
	// OID and Mod are the type OID and type modifier as given (the domain
	// or array type itself, not what it resolves to).
	OID uint32
	Mod int32
	// Name is the human name as format_type(OID, Mod) prints it, e.g.
	// "numeric(12,2)", "integer[]", "timestamp with time zone", "mood".
	Name string
	// Base and BaseMod are the type and modifier the values are decoded
	// as once domains are resolved; for arrays the array type over the
	// resolved element. For types without a domain, Base == OID.
	Base    uint32
	BaseMod int32
	// Elem is the element type of an array, nil otherwise.
	Elem *Type
}

// kind is how a column's text values are decoded.
type kind uint8

const (
	kString      kind = iota // text form kept as is
	kBool                    // bool
	kInt16                   // int2 -> int32
	kInt32                   // int4
	kInt64                   // int8, oid
	kFloat32                 // float4
	kFloat64                 // float8
	kDecimal                 // numeric(p,s) that fits decimal128
	kMoney                   // money -> decimal128(19,2)
	kBytea                   // bytea -> binary
	kUUID                    // uuid -> canonical lowercase string
	kDate                    // date -> date32
	kTimestamp               // timestamp -> timestamp[us]
	kTimestampTZ             // timestamptz -> timestamp[us, UTC]
	kTime                    // time -> time64[us]
	kInterval                // interval -> ISO 8601 string
	kList                    // array -> list<element>
)

// Well-known type OIDs (pg_type.oid, stable across PostgreSQL versions).
const (
	oidBool        = 16
	oidBytea       = 17
	oidChar        = 18
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt2Vector  = 22
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidOIDVector   = 30
	oidJSON        = 114
	oidXML         = 142
	oidFloat4      = 700
	oidFloat8      = 701
	oidMoney       = 790
	oidBox         = 603
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestampTZ = 1184
	oidInterval    = 1186
	oidTimeTZ      = 1266
	oidBit         = 1560
	oidVarbit      = 1562
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// builtin describes a type whose OID is fixed in every PostgreSQL
// cluster, so it resolves without a catalog query.
type builtin struct {
	name  string // format_type(oid, -1)
	kind  kind   // for scalars; kList for arrays
	elem  uint32 // element OID for arrays
	delim byte   // array delimiter of the element type (',' or ';')
}

// builtins holds scalars with a native mapping, common string-mapped
// scalars, and the array types over all of them. Anything else goes
// through the catalog (or maps to string without one).
var builtins = map[uint32]builtin{
	oidBool: {name: "boolean", kind: kBool}, 1000: {elem: oidBool, kind: kList},
	oidBytea: {name: "bytea", kind: kBytea}, 1001: {elem: oidBytea, kind: kList},
	oidChar: {name: `"char"`}, 1002: {elem: oidChar, kind: kList},
	oidName: {name: "name"}, 1003: {elem: oidName, kind: kList},
	oidInt8: {name: "bigint", kind: kInt64}, 1016: {elem: oidInt8, kind: kList},
	oidInt2: {name: "smallint", kind: kInt16}, 1005: {elem: oidInt2, kind: kList},
	oidInt2Vector: {name: "int2vector"}, 1006: {elem: oidInt2Vector, kind: kList},
	oidInt4: {name: "integer", kind: kInt32}, 1007: {elem: oidInt4, kind: kList},
	24: {name: "regproc"}, 1008: {elem: 24, kind: kList},
	oidText: {name: "text"}, 1009: {elem: oidText, kind: kList},
	oidOID: {name: "oid", kind: kInt64}, 1028: {elem: oidOID, kind: kList},
	27: {name: "tid"}, 1010: {elem: 27, kind: kList},
	28: {name: "xid"}, 1011: {elem: 28, kind: kList},
	29: {name: "cid"}, 1012: {elem: 29, kind: kList},
	oidOIDVector: {name: "oidvector"}, 1013: {elem: oidOIDVector, kind: kList},
	oidJSON: {name: "json"}, 199: {elem: oidJSON, kind: kList},
	oidXML: {name: "xml"}, 143: {elem: oidXML, kind: kList},
	600: {name: "point"}, 1017: {elem: 600, kind: kList},
	601: {name: "lseg"}, 1018: {elem: 601, kind: kList},
	602: {name: "path"}, 1019: {elem: 602, kind: kList},
	oidBox: {name: "box"}, 1020: {elem: oidBox, kind: kList, delim: ';'},
	604: {name: "polygon"}, 1027: {elem: 604, kind: kList},
	628: {name: "line"}, 629: {elem: 628, kind: kList},
	650: {name: "cidr"}, 651: {elem: 650, kind: kList},
	oidFloat4: {name: "real", kind: kFloat32}, 1021: {elem: oidFloat4, kind: kList},
	oidFloat8: {name: "double precision", kind: kFloat64}, 1022: {elem: oidFloat8, kind: kList},
	718: {name: "circle"}, 719: {elem: 718, kind: kList},
	774: {name: "macaddr8"}, 775: {elem: 774, kind: kList},
	oidMoney: {name: "money", kind: kMoney}, 791: {elem: oidMoney, kind: kList},
	829: {name: "macaddr"}, 1040: {elem: 829, kind: kList},
	869: {name: "inet"}, 1041: {elem: 869, kind: kList},
	1033: {name: "aclitem"}, 1034: {elem: 1033, kind: kList},
	oidBPChar: {name: "bpchar"}, 1014: {elem: oidBPChar, kind: kList},
	oidVarchar: {name: "character varying"}, 1015: {elem: oidVarchar, kind: kList},
	oidDate: {name: "date", kind: kDate}, 1182: {elem: oidDate, kind: kList},
	oidTime: {name: "time without time zone", kind: kTime}, 1183: {elem: oidTime, kind: kList},
	oidTimestamp: {name: "timestamp without time zone", kind: kTimestamp}, 1115: {elem: oidTimestamp, kind: kList},
	oidTimestampTZ: {name: "timestamp with time zone", kind: kTimestampTZ}, 1185: {elem: oidTimestampTZ, kind: kList},
	oidInterval: {name: "interval", kind: kInterval}, 1187: {elem: oidInterval, kind: kList},
	oidTimeTZ: {name: "time with time zone"}, 1270: {elem: oidTimeTZ, kind: kList},
	oidBit: {name: `"bit"`}, 1561: {elem: oidBit, kind: kList},
	oidVarbit: {name: "bit varying"}, 1563: {elem: oidVarbit, kind: kList},
	oidNumeric: {name: "numeric", kind: kDecimal}, 1231: {elem: oidNumeric, kind: kList},
	1790: {name: "refcursor"}, 2201: {elem: 1790, kind: kList},
	2202: {name: "regprocedure"}, 2207: {elem: 2202, kind: kList},
	2203: {name: "regoper"}, 2208: {elem: 2203, kind: kList},
	2204: {name: "regoperator"}, 2209: {elem: 2204, kind: kList},
	2205: {name: "regclass"}, 2210: {elem: 2205, kind: kList},
	2206: {name: "regtype"}, 2211: {elem: 2206, kind: kList},
	oidUUID: {name: "uuid", kind: kUUID}, 2951: {elem: oidUUID, kind: kList},
	2970: {name: "txid_snapshot"}, 2949: {elem: 2970, kind: kList},
	3220: {name: "pg_lsn"}, 3221: {elem: 3220, kind: kList},
	3614: {name: "tsvector"}, 3643: {elem: 3614, kind: kList},
	3615: {name: "tsquery"}, 3645: {elem: 3615, kind: kList},
	oidJSONB: {name: "jsonb"}, 3807: {elem: oidJSONB, kind: kList},
	4072: {name: "jsonpath"}, 4073: {elem: 4072, kind: kList},
	3904: {name: "int4range"}, 3905: {elem: 3904, kind: kList},
	3906: {name: "numrange"}, 3907: {elem: 3906, kind: kList},
	3908: {name: "tsrange"}, 3909: {elem: 3908, kind: kList},
	3910: {name: "tstzrange"}, 3911: {elem: 3910, kind: kList},
	3912: {name: "daterange"}, 3913: {elem: 3912, kind: kList},
	3926: {name: "int8range"}, 3927: {elem: 3926, kind: kList},
	5069: {name: "xid8"}, 271: {elem: 5069, kind: kList},
	2249: {name: "record"}, 2287: {elem: 2249, kind: kList},
	2275: {name: "cstring"}, 1263: {elem: 2275, kind: kList},
	705: {name: "unknown"},
}

// numericTypmod splits a numeric type modifier into precision and scale.
// PostgreSQL 15 stores the scale as an 11-bit signed field (scales may be
// negative or exceed the precision); for older servers, whose scales are
// 0..precision, this is the same as (typmod-4)&0xffff.
func numericTypmod(typmod int32) (prec, scale int32, ok bool) {
	if typmod < 4 {
		return 0, 0, false
	}
	t := typmod - 4
	prec = (t >> 16) & 0xffff
	scale = ((t & 0x7ff) ^ 1024) - 1024
	return prec, scale, true
}

// builtinName is format_type(oid, typmod) for a built-in type.
func builtinName(oid uint32, typmod int32) string {
	bi, ok := builtins[oid]
	if !ok {
		return "oid " + strconv.FormatUint(uint64(oid), 10)
	}
	if bi.kind == kList {
		return builtinName(bi.elem, typmod) + "[]"
	}
	if typmod < 0 {
		return bi.name
	}
	mod := strconv.Itoa(int(typmod))
	switch oid {
	case oidNumeric:
		if p, s, ok := numericTypmod(typmod); ok {
			return "numeric(" + strconv.Itoa(int(p)) + "," + strconv.Itoa(int(s)) + ")"
		}
	case oidVarchar, oidBPChar:
		if typmod >= 4 {
			n := "(" + strconv.Itoa(int(typmod-4)) + ")"
			if oid == oidBPChar {
				return "character" + n
			}
			return "character varying" + n
		}
	case oidBit:
		return "bit(" + mod + ")"
	case oidVarbit:
		return "bit varying(" + mod + ")"
	case oidTime:
		return "time(" + mod + ") without time zone"
	case oidTimeTZ:
		return "time(" + mod + ") with time zone"
	case oidTimestamp:
		return "timestamp(" + mod + ") without time zone"
	case oidTimestampTZ:
		return "timestamp(" + mod + ") with time zone"
	case oidInterval:
		return "interval" + intervalTypmodName(typmod)
	}
	return bi.name
}

// intervalTypmodName mirrors PostgreSQL's intervaltypmodout.
func intervalTypmodName(typmod int32) string {
	const (
		month  = 1 << 1
		year   = 1 << 2
		day    = 1 << 3
		hour   = 1 << 10
		minute = 1 << 11
		second = 1 << 12
	)
	prec := typmod & 0xffff
	var fields string
	switch (typmod >> 16) & 0x7fff {
	case year:
		fields = " year"
	case month:
		fields = " month"
	case day:
		fields = " day"
	case hour:
		fields = " hour"
	case minute:
		fields = " minute"
	case second:
		fields = " second"
	case year | month:
		fields = " year to month"
	case day | hour:
		fields = " day to hour"
	case day | hour | minute:
		fields = " day to minute"
	case day | hour | minute | second:
		fields = " day to second"
	case hour | minute:
		fields = " hour to minute"
	case hour | minute | second:
		fields = " hour to second"
	case minute | second:
		fields = " minute to second"
	}
	if prec != 0xffff {
		return fields + "(" + strconv.Itoa(int(prec)) + ")"
	}
	return fields
}
