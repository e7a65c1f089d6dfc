package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cdclake/cdclake/lake"
)

// parse decodes the file's keys into a Config with its defaults filled in,
// and returns every problem found.
func parse(data []byte, getenv func(string) (string, bool)) (*Config, []error) {
	root, err := parseYAML(data)
	if err != nil {
		return nil, []error{err}
	}
	d := &decoder{getenv: getenv, shown: map[string]bool{}, lines: map[string]int{}}
	var c Config
	d.mapping("", root, []field{
		{"lake", func(p string, n *yaml.Node) { c.Lake = d.lakeLocation(p, n) }},
		{"catalog", func(p string, n *yaml.Node) { c.Catalog = d.catalog(p, n) }},
		{"sources", func(p string, n *yaml.Node) { c.Sources = d.sources(p, n) }},
		{"compaction", func(p string, n *yaml.Node) {
			d.mapping(p, n, []field{
				{"interval", func(p string, n *yaml.Node) { c.Compaction.Interval = d.duration(p, n) }},
				{"snapshot-retention", func(p string, n *yaml.Node) { c.Compaction.SnapshotRetention = d.duration(p, n) }},
				{"changelog-retention", func(p string, n *yaml.Node) { c.Compaction.ChangelogRetention = d.duration(p, n) }},
				{"orphan-age", func(p string, n *yaml.Node) { c.Compaction.OrphanAge = d.duration(p, n) }},
			})
		}},
		{"serve", func(p string, n *yaml.Node) {
			d.mapping(p, n, []field{
				{"addr", func(p string, n *yaml.Node) { c.Serve.Addr = d.addr(p, n) }},
				{"pg-addr", func(p string, n *yaml.Node) { c.Serve.PGAddr = d.addr(p, n) }},
				{"pg-tls-cert", func(p string, n *yaml.Node) { c.Serve.PGTLSCert = d.str(p, n) }},
				{"pg-tls-key", func(p string, n *yaml.Node) { c.Serve.PGTLSKey = d.str(p, n) }},
			})
		}},
		{"kpis", func(p string, n *yaml.Node) {
			d.mapping(p, n, []field{{"dir", func(p string, n *yaml.Node) { c.KPIs.Dir = d.str(p, n) }}})
		}},
		{"checks", func(p string, n *yaml.Node) {
			d.mapping(p, n, []field{{"dir", func(p string, n *yaml.Node) { c.Checks.Dir = d.str(p, n) }}})
		}},
	})
	c.setDefaults(d.lines)
	d.check(&c)
	return &c, d.errs
}

// parseYAML returns the document of data, refusing several documents.
func parseYAML(data []byte) (root *yaml.Node, err error) {
	defer func() {
		// the YAML parser is not ours: turn a crash on odd input into an error
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("yaml: cannot parse the file: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc, extra yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil // an empty file: reported as having no sources
		}
		return nil, yamlError(err)
	}
	if err := dec.Decode(&extra); err != io.EOF {
		if err != nil {
			return nil, yamlError(err)
		}
		return nil, fmt.Errorf("yaml: the file holds more than one document (line %d)", extra.Line)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError rewrites "yaml: line 3: problem" as "yaml: problem (line 3)".
func yamlError(err error) error {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("yaml: %s (line %s)", m[2], m[1])
	}
	return errors.New(msg)
}

var (
	// sourceName leaves room for "cdclake_" in PostgreSQL's 63-byte names.
	sourceName = regexp.MustCompile(`^[a-z0-9_]{1,55}$`)
	slotName   = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
)

// sources reads the list of sources and checks each one.
func (d *decoder) sources(path string, n *yaml.Node) []Source {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(path, n.Line, "must be a list of sources, each starting with \"- name:\", not %s", kindName(n))
		return nil
	}
	var out []Source
	firstLine := map[string]int{} // name -> line
	for i, sn := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if sn = d.deref(sn); sn == nil {
			continue
		}
		if isNull(sn) {
			d.errorf(p, sn.Line, "is empty (a source needs at least name and url)")
			continue
		}
		s := d.source(p, sn)
		if s.Name != "" {
			if line, dup := firstLine[s.Name]; dup {
				d.errorf(p+".name", d.lines[p+".name"], "source %q is already defined on line %d (names must be unique)", s.Name, line)
			} else {
				firstLine[s.Name] = d.lines[p+".name"]
			}
		}
		out = append(out, s)
	}
	return out
}

// source reads one source.
func (d *decoder) source(path string, n *yaml.Node) Source {
	var s Source
	d.mapping(path, n, []field{
		{"name", func(p string, n *yaml.Node) {
			v, ok := d.scalar(p, n)
			switch {
			case !ok || isNull(n): // no value: reported as required below
			case v.text == "":
				d.errorf(p, n.Line, "must not be empty")
			case !sourceName.MatchString(v.text):
				d.errorf(p, n.Line, "%s is not a source name (1 to 55 of a-z, 0-9 and _)", v)
			default:
				s.Name = v.text
			}
		}},
		{"url", func(p string, n *yaml.Node) { s.URL = d.pgURL(p, n) }},
		{"publication", func(p string, n *yaml.Node) {
			s.Publication = d.str(p, n)
			if len(s.Publication) > 63 {
				d.errorf(p, n.Line, "is longer than PostgreSQL's 63 bytes for a name")
			}
		}},
		{"slot", func(p string, n *yaml.Node) {
			v, ok := d.scalar(p, n)
			if ok && v.text != "" && !slotName.MatchString(v.text) {
				d.errorf(p, n.Line, "%s is not a replication slot name (1 to 63 of a-z, 0-9 and _)", v)
			}
			s.Slot = v.text
		}},
		{"tables", func(p string, n *yaml.Node) { s.Tables = d.strings(p, n) }},
		{"snapshot", func(p string, n *yaml.Node) {
			v, ok := d.scalar(p, n)
			if ok && v.text != "" && v.text != "initial" && v.text != "never" {
				d.errorf(p, n.Line, "%s must be initial or never", v)
			}
			s.Snapshot = v.text
		}},
		{"snapshot-workers", func(p string, n *yaml.Node) { s.SnapshotWorkers = d.count(p, n) }},
		{"flush-interval", func(p string, n *yaml.Node) { s.FlushInterval = d.duration(p, n) }},
		{"flush-rows", func(p string, n *yaml.Node) { s.FlushRows = d.count(p, n) }},
		{"flush-bytes", func(p string, n *yaml.Node) { s.FlushBytes = d.size(p, n) }},
		{"memory-budget", func(p string, n *yaml.Node) { s.MemoryBudget = d.size(p, n) }},
		{"spill-dir", func(p string, n *yaml.Node) { s.SpillDir = d.str(p, n) }},
	})
	if n.Kind == yaml.MappingNode {
		if _, ok := d.lines[path+".name"]; !ok {
			d.errorf(path+".name", n.Line, "required (the source's name in the lake, as in name: orders)")
		}
		if _, ok := d.lines[path+".url"]; !ok {
			d.errorf(path+".url", n.Line, "required (the database's URL, as in url: postgres://cdc@orders-db:5432/orders)")
		}
	}
	return s
}

// pgURL reads a postgres:// URL.
func (d *decoder) pgURL(path string, n *yaml.Node) string {
	v, ok := d.scalar(path, n)
	if ok && !isNull(n) { // no value: reported as required
		d.checkPGURL(path, n.Line, v.text)
	}
	return v.text
}

// checkPGURL checks a postgres:// URL. Its errors never show the URL.
func (d *decoder) checkPGURL(path string, line int, s string) {
	if s == "" {
		d.errorf(path, line, "must not be empty")
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		d.errorf(path, line, "is not a valid URL (percent-encode special characters of a password, as %%40 for @)")
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		d.errorf(path, line, "must be a postgres:// URL, as in postgres://user@host:5432/db")
	}
}

// lakeLocation reads the lake's folder or URL.
func (d *decoder) lakeLocation(path string, n *yaml.Node) string {
	v, ok := d.scalar(path, n)
	if !ok || v.text == "" {
		return v.text
	}
	if _, err := lake.Parse(v.text); err != nil {
		msg := err.Error() // it quotes the value: fine only if written in the file
		if v.text != v.raw {
			msg = v.String() + " is not a lake location (use a folder path, file:///abs/path or s3://bucket/prefix)"
		}
		d.errorf(path, n.Line, "%s", msg)
	}
	return v.text
}

// catalog reads a SQLite path or a postgres:// URL.
func (d *decoder) catalog(path string, n *yaml.Node) string {
	v, ok := d.scalar(path, n)
	switch {
	case !ok || v.text == "":
		return v.text
	case strings.HasPrefix(v.text, "postgres://"), strings.HasPrefix(v.text, "postgresql://"):
		d.checkPGURL(path, n.Line, v.text)
	case strings.Contains(v.text, "://") && !strings.HasPrefix(v.text, "sqlite://") && !strings.HasPrefix(v.text, "file://"):
		d.errorf(path, n.Line, "must be a SQLite file path or a postgres:// URL")
	}
	return v.text
}

// addr reads host:port; empty is allowed (it disables an endpoint).
func (d *decoder) addr(path string, n *yaml.Node) string {
	v, ok := d.scalar(path, n)
	if !ok || v.text == "" {
		return v.text
	}
	_, port, err := net.SplitHostPort(v.text)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		d.errorf(path, n.Line, "%s is not a host:port address (as in 127.0.0.1:8080, or :8080 for all interfaces)", v)
	}
	return v.text
}

// check reports the problems that span several keys.
func (d *decoder) check(c *Config) {
	if len(c.Sources) == 0 {
		d.errorf("sources", d.lines["sources"], "at least one source is required")
	}
	if loc, err := lake.Parse(c.Lake); err == nil && loc.Scheme == "s3" && c.Catalog == "" {
		d.errorf("catalog", d.lines["lake"], "required with an s3:// lake (a SQLite file path or a postgres:// URL)")
	}
	if c.Serve.Addr != "" && c.Serve.Addr == c.Serve.PGAddr {
		d.errorf("serve.pg-addr", d.lines["serve.pg-addr"], "is the same address as serve.addr")
	}
	if c.Serve.PGTLSCert != "" && c.Serve.PGTLSKey == "" {
		d.errorf("serve.pg-tls-cert", d.lines["serve.pg-tls-cert"], "needs serve.pg-tls-key")
	}
	if c.Serve.PGTLSKey != "" && c.Serve.PGTLSCert == "" {
		d.errorf("serve.pg-tls-key", d.lines["serve.pg-tls-key"], "needs serve.pg-tls-cert")
	}
}
