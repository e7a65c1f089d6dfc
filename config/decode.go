package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

const (
	// maxAliases bounds the aliases followed, against alias bombs.
	maxAliases = 10_000
	// maxMergeDepth bounds merge keys (<<) merging mappings that merge.
	maxMergeDepth = 10
)

// A decoder walks a YAML node tree, collecting one error per problem.
type decoder struct {
	getenv  func(string) (string, bool)
	errs    []error
	shown   map[string]bool // error messages already collected
	lines   map[string]int  // line of each value given (not null), by path
	aliases int
}

// errorf records "path: message (line N)" once; line 0 means unknown.
func (d *decoder) errorf(path string, line int, format string, args ...any) {
	msg := path + ": " + fmt.Sprintf(format, args...)
	if line > 0 {
		msg += fmt.Sprintf(" (line %d)", line)
	}
	if !d.shown[msg] {
		d.shown[msg] = true
		d.errs = append(d.errs, fmt.Errorf("%s", msg))
	}
}

// A field is a known key of a mapping and what to do with its value.
type field struct {
	key string
	set func(path string, v *yaml.Node)
}

// mapping calls the field of each key of the mapping n, and reports keys
// that are unknown or given twice. A null n is an empty mapping.
func (d *decoder) mapping(path string, n *yaml.Node, fields []field) {
	n = d.deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(orTop(path), n.Line, "must be a mapping of keys (key: value), not %s", kindName(n))
		return
	}
	for _, e := range d.entries(path, n, 0) {
		p := keyPath(path, e.key.Value)
		i := slices.IndexFunc(fields, func(f field) bool { return f.key == e.key.Value })
		if i < 0 {
			d.errorf(p, e.key.Line, "unknown key%s", suggest(e.key.Value, fields))
			continue
		}
		v := d.deref(e.val)
		if v == nil {
			continue
		}
		if !isNull(v) { // a key without a value is as if left out
			d.lines[p] = v.Line
		}
		fields[i].set(p, v)
	}
}

type entry struct{ key, val *yaml.Node }

// entries lists the keys and values of the mapping n, with those of
// mappings merged in with "<<" when n does not have the key itself.
func (d *decoder) entries(path string, n *yaml.Node, depth int) []entry {
	var own, merged []entry
	first := map[string]int{} // key -> line
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(orTop(path), k.Line, "keys must be plain names, not %s", kindName(k))
			continue
		}
		if k.Tag == "!!merge" {
			merged = append(merged, d.merge(path, v, depth)...)
			continue
		}
		if line, dup := first[k.Value]; dup {
			d.errorf(keyPath(path, k.Value), k.Line, "key given twice (first on line %d)", line)
			continue
		}
		first[k.Value] = k.Line
		own = append(own, entry{k, v})
	}
	for _, e := range merged {
		if _, ok := first[e.key.Value]; !ok {
			first[e.key.Value] = e.key.Line
			own = append(own, e)
		}
	}
	return own
}

// merge returns the entries of the value of a merge key: a mapping or a
// list of mappings, usually aliases (<<: *defaults).
func (d *decoder) merge(path string, v *yaml.Node, depth int) []entry {
	v = d.deref(v)
	if v == nil {
		return nil
	}
	if depth >= maxMergeDepth {
		d.errorf(orTop(path), v.Line, "merge keys (<<) nested more than %d deep", maxMergeDepth)
		return nil
	}
	list := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		list = v.Content
	}
	var out []entry
	for _, m := range list {
		if m = d.deref(m); m == nil {
			continue
		}
		if m.Kind != yaml.MappingNode {
			d.errorf(orTop(path), m.Line, "<< must merge a mapping or a list of mappings, not %s", kindName(m))
			continue
		}
		out = append(out, d.entries(path, m, depth+1)...)
	}
	return out
}

// deref follows aliases to the node they name. It returns nil once
// maxAliases aliases were followed (reported once).
func (d *decoder) deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		d.aliases++
		if d.aliases > maxAliases {
			d.errorf("yaml", n.Line, "more than %d aliases", maxAliases)
			return nil
		}
		n = n.Alias
	}
	return n
}

// value is a scalar with its ${VAR} references expanded.
type value struct {
	text   string // expanded
	raw    string // as written
	pieces []piece
}

// String shows the value in an error message as written in the file, so
// that values of environment variables (maybe secrets) never show.
func (v value) String() string {
	s := quoteClip(v.raw)
	if v.text != v.raw {
		s += " (expanded)"
	}
	return s
}

// scalar returns the value of the scalar n; ok is false when it reported
// an error. A null (~, or nothing after the colon) is "".
func (d *decoder) scalar(path string, n *yaml.Node) (v value, ok bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(path, n.Line, "must be a single value, not %s", kindName(n))
		return v, false
	}
	if isNull(n) {
		return v, true
	}
	v.raw = n.Value
	ps, err := splitRefs(n.Value)
	if err != nil {
		d.errorf(path, n.Line, "%v", err)
		return v, false
	}
	if literalPassword(ps) {
		d.errorf(path, n.Line, "a password is written in the file: write it as ${VAR} (as in postgres://user:${DB_PASSWORD}@host/db) or use PGPASSWORD or ~/.pgpass")
		return v, false
	}
	text, missing := expand(ps, d.getenv)
	for _, name := range missing {
		d.errorf(path, n.Line, "environment variable %s is not set (set it, or write ${%s:-default})", name, name)
	}
	v.text, v.pieces = text, ps
	return v, len(missing) == 0
}

func (d *decoder) str(path string, n *yaml.Node) string {
	v, _ := d.scalar(path, n)
	return v.text
}

// strings reads a list of values; null is an empty list.
func (d *decoder) strings(path string, n *yaml.Node) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(path, n.Line, "must be a list (as in [a, b] or lines starting with -), not %s", kindName(n))
		return nil
	}
	var out []string
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if item = d.deref(item); item == nil {
			continue
		}
		if v, ok := d.scalar(p, item); ok {
			if v.text == "" {
				d.errorf(p, item.Line, "must not be empty")
				continue
			}
			out = append(out, v.text)
		}
	}
	return out
}

// duration reads a Go duration such as 500ms, 1s, 5m or 168h.
func (d *decoder) duration(path string, n *yaml.Node) time.Duration {
	v, ok := d.scalar(path, n)
	if !ok || v.text == "" {
		return 0
	}
	t, err := time.ParseDuration(strings.TrimSpace(v.text))
	switch {
	case err != nil:
		hint := "use a number with a unit: ms, s, m or h, as in 500ms, 1s, 5m, 168h"
		if strings.HasSuffix(v.text, "d") {
			hint = "days are written in hours, as in 168h for 7 days"
		}
		d.errorf(path, n.Line, "%s is not a duration (%s)", v, hint)
	case t < 0:
		d.errorf(path, n.Line, "%s must not be negative", v)
		return 0
	}
	return t
}

// sizeUnits are the units a size accepts, compared without case.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
	"kb": 1e3, "mb": 1e6, "gb": 1e9,
}

// size reads a number of bytes: plain, or with a unit as in 64MiB.
func (d *decoder) size(path string, n *yaml.Node) int64 {
	v, ok := d.scalar(path, n)
	if !ok || v.text == "" {
		return 0
	}
	s := strings.TrimSpace(v.text)
	digits := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if digits < 0 {
		digits = len(s)
	}
	num, err := strconv.ParseInt(s[:digits], 10, 64)
	unit, known := sizeUnits[strings.ToLower(strings.TrimSpace(s[digits:]))]
	if err != nil || !known || num > math.MaxInt64/unit {
		d.errorf(path, n.Line, "%s is not a size (write bytes, or a whole number with B, KiB, MiB, GiB, KB, MB or GB, as in 64MiB)", v)
		return 0
	}
	return num * unit
}

// count reads a whole number, 0 or more.
func (d *decoder) count(path string, n *yaml.Node) int {
	v, ok := d.scalar(path, n)
	if !ok || v.text == "" {
		return 0
	}
	i, err := strconv.Atoi(strings.TrimSpace(v.text))
	if err != nil || i < 0 {
		d.errorf(path, n.Line, "%s is not a whole number, 0 or more", v)
		return 0
	}
	return i
}

// suggest names the known key closest to an unknown one, or lists them.
func suggest(key string, fields []field) string {
	best, bestDist := "", math.MaxInt
	k := normalizeKey(key)
	for _, f := range fields {
		fk := normalizeKey(f.key)
		dist := editDistance(k, fk)
		if k != "" && strings.Contains(fk, k) {
			dist = min(dist, 1)
		}
		if dist < bestDist {
			best, bestDist = f.key, dist
		}
	}
	if best != "" && bestDist <= 1+len(k)/4 {
		return fmt.Sprintf(", did you mean %q?", best)
	}
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return " (known keys: " + strings.Join(keys, ", ") + ")"
}

// normalizeKey folds case and drops - and _, so that flush_interval and
// FlushInterval both find flush-interval.
func normalizeKey(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' {
			return -1
		}
		return r
	}, strings.ToLower(s))
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 100 || len(b) > 100 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a single value"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// keyPath joins a key to a path, quoting keys that are not plain names
// so that an error stays on one line.
func keyPath(path, key string) string {
	plain := key != "" && len(key) <= 40 && strings.IndexFunc(key, func(r rune) bool {
		return !(r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) < 0
	if !plain {
		key = quoteClip(key)
	}
	return joinPath(path, key)
}

// quoteClip quotes s, cut to 60 bytes.
func quoteClip(s string) string {
	if len(s) > 60 {
		s = s[:57]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return strconv.Quote(s)
}

// orTop names the top of the file in errors about the whole of it.
func orTop(path string) string {
	if path == "" {
		return "config"
	}
	return path
}
