package rest

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// The read side of the Apache Iceberg REST Catalog protocol, under
// /iceberg: a client configured with uri=<server>/iceberg calls
// /iceberg/v1/config and then the routes below (no prefix). Namespace
// levels are joined with the unit separator (%1F in paths). Identifiers are
// the lake's own (levels encoded by lakeformat.IdentPart). Everything that
// would change the catalog answers 406.

// icebergEndpoints are the endpoints advertised in /v1/config.
var icebergEndpoints = []string{
	"GET /v1/{prefix}/namespaces",
	"GET /v1/{prefix}/namespaces/{namespace}",
	"HEAD /v1/{prefix}/namespaces/{namespace}",
	"GET /v1/{prefix}/namespaces/{namespace}/tables",
	"GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
}

const unitSeparator = "\x1f"

func (s *Server) iceConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"defaults": map[string]string{}, "overrides": map[string]string{}, "endpoints": icebergEndpoints})
}

// namespaces returns every namespace of the lake, implicit parents
// included (the SQL catalog only records the levels tables live in).
func (s *Server) allNamespaces(r *http.Request) ([]table.Identifier, error) {
	nss, err := s.o.Catalog.Iceberg().ListNamespaces(r.Context(), nil)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []table.Identifier
	for _, ns := range nss {
		for i := 1; i <= len(ns); i++ {
			key := strings.Join(ns[:i], unitSeparator)
			if !seen[key] {
				seen[key] = true
				out = append(out, slices.Clone(ns[:i]))
			}
		}
	}
	slices.SortFunc(out, func(a, b table.Identifier) int { return slices.Compare(a, b) })
	return out, nil
}

func hasNamespace(all []table.Identifier, ns table.Identifier) bool {
	return slices.ContainsFunc(all, func(n table.Identifier) bool { return slices.Equal(n, ns) })
}

func splitNamespace(v string) table.Identifier { return strings.Split(v, unitSeparator) }

func (s *Server) iceNamespaces(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := parsePage(q, "pageSize", "pageToken", 0)
	if err != nil {
		badRequest(w, r, err)
		return
	}
	all, err := s.allNamespaces(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var parent table.Identifier
	if v := q.Get("parent"); v != "" {
		parent = splitNamespace(v)
		if !hasNamespace(all, parent) {
			writeError(w, r, http.StatusNotFound, "NoSuchNamespaceException", "namespace does not exist: "+strings.Join(parent, "."))
			return
		}
	}
	children := []table.Identifier{}
	for _, ns := range all {
		if len(ns) == len(parent)+1 && slices.Equal(ns[:len(parent)], parent) {
			children = append(children, ns)
		}
	}
	items, next := cut(children, p)
	writeJSON(w, map[string]any{"namespaces": items, "next-page-token": next})
}

func (s *Server) iceNamespace(w http.ResponseWriter, r *http.Request) {
	ns := splitNamespace(r.PathValue("ns"))
	all, err := s.allNamespaces(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !hasNamespace(all, ns) {
		writeError(w, r, http.StatusNotFound, "NoSuchNamespaceException", "namespace does not exist: "+strings.Join(ns, "."))
		return
	}
	props, err := s.o.Catalog.Iceberg().LoadNamespaceProperties(r.Context(), ns)
	if err != nil || props == nil {
		props = iceberg.Properties{} // an implicit parent has none
	}
	writeJSON(w, map[string]any{"namespace": ns, "properties": props})
}

func (s *Server) iceTables(w http.ResponseWriter, r *http.Request) {
	ns := splitNamespace(r.PathValue("ns"))
	p, err := parsePage(r.URL.Query(), "pageSize", "pageToken", 0)
	if err != nil {
		badRequest(w, r, err)
		return
	}
	all, err := s.allNamespaces(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !hasNamespace(all, ns) {
		writeError(w, r, http.StatusNotFound, "NoSuchNamespaceException", "namespace does not exist: "+strings.Join(ns, "."))
		return
	}
	type ident struct {
		Namespace table.Identifier `json:"namespace"`
		Name      string           `json:"name"`
	}
	ids := []ident{}
	for id, err := range s.o.Catalog.Iceberg().ListTables(r.Context(), ns) {
		if errors.Is(err, icecat.ErrNoSuchNamespace) {
			break // an implicit parent holds no tables
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		ids = append(ids, ident{Namespace: id[:len(id)-1], Name: id[len(id)-1]})
	}
	slices.SortFunc(ids, func(a, b ident) int { return strings.Compare(a.Name, b.Name) })
	items, next := cut(ids, p)
	writeJSON(w, map[string]any{"identifiers": items, "next-page-token": next})
}

func (s *Server) iceTable(w http.ResponseWriter, r *http.Request) {
	id := append(splitNamespace(r.PathValue("ns")), r.PathValue("table"))
	tbl, err := s.o.Catalog.Iceberg().LoadTable(r.Context(), id)
	if errors.Is(err, icecat.ErrNoSuchTable) || errors.Is(err, icecat.ErrNoSuchNamespace) {
		writeError(w, r, http.StatusNotFound, "NoSuchTableException", "table does not exist: "+strings.Join(id, "."))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	md, err := json.Marshal(tbl.Metadata())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, map[string]any{
		"metadata-location": tbl.MetadataLocation(),
		"metadata":          json.RawMessage(md),
		"config":            map[string]string{},
	})
}

// iceOther answers the rest of the protocol: reads of unknown paths get
// 404, anything that would write gets 406 (this catalog is read-only:
// cdclake alone writes the lake).
func (s *Server) iceOther(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		writeError(w, r, http.StatusNotFound, "NotFoundException", "no such route in the read-only Iceberg REST catalog")
		return
	}
	writeError(w, r, http.StatusNotAcceptable, "UnsupportedOperationException", "cdclake's Iceberg REST catalog is read-only")
}
