package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cdclake/cdclake/catalog"
)

// TestOpenAPI checks the server against docs/openapi.yaml: every
// documented path answers 200 with the documented shape (types, required
// properties, nullability, recursively), and every route is documented.
func TestOpenAPI(t *testing.T) {
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	paths := doc["paths"].(map[string]any)

	f := shopLake(t)
	// a compacted snapshot table and a running initial copy, so that every
	// optional part of the answers is filled in
	writeSnapshotTable(t, f, 123)
	ctx := context.Background()
	if err := f.cat.PutSnapshot(ctx, catalog.TableSnapshot{Source: "shop", Schema: "public", Table: "orders",
		State: catalog.SnapshotRunning, LSN: 1, Rows: 10, Bytes: 100, TotalBytes: 1000, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	o := Options{Catalog: f.cat, Bucket: f.bucket, Location: f.loc}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := f.server(t, Options{})
	concrete := routePaths(t, srv, ts)
	var tb Table
	get(t, ts, "", "/v1/tables/shop/public/orders", http.StatusOK, &tb)
	if tb.Rows == nil || *tb.Rows != 3 || tb.SnapshotLSN == nil || *tb.SnapshotLSN != 123 || tb.Snapshot == nil {
		t.Errorf("table with a snapshot table: %+v", tb)
	}
	var src Source
	get(t, ts, "", "/v1/sources/shop", http.StatusOK, &src)
	if src.State != "snapshotting" || src.Snapshot == nil || src.Snapshot.State != "running" || len(src.Snapshot.Tables) != 1 {
		t.Errorf("source while snapshotting: %+v", src)
	}

	var documented []string
	for p := range paths {
		documented = append(documented, p)
	}
	sort.Strings(documented)
	for _, pattern := range srv.Patterns() {
		method, p, ok := strings.Cut(pattern, " ")
		if !ok || method != "GET" || strings.HasPrefix(p, "/iceberg/") {
			continue
		}
		p = strings.ReplaceAll(p, "{key...}", "{key}")
		if !slices.Contains(documented, p) {
			t.Errorf("route %s is not in docs/openapi.yaml", pattern)
		}
	}

	for _, p := range documented {
		op, ok := paths[p].(map[string]any)["get"].(map[string]any)
		if !ok {
			continue
		}
		t.Run(p, func(t *testing.T) {
			path, ok := concrete["GET "+strings.ReplaceAll(p, "{key}", "{key...}")]
			if !ok {
				t.Fatalf("documented path %s has no route", p)
			}
			resp, err := http.Get(ts.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			ok200, _ := op["responses"].(map[string]any)["200"].(map[string]any)
			if resp.StatusCode != http.StatusOK || ok200 == nil {
				t.Fatalf("GET %s: %d (documented 200: %v)", path, resp.StatusCode, ok200 != nil)
			}
			content := ok200["content"].(map[string]any)
			ct := strings.Split(resp.Header.Get("Content-Type"), ";")[0]
			media, ok := content[ct].(map[string]any)
			if !ok {
				t.Fatalf("GET %s: content type %s not documented (%v)", path, ct, content)
			}
			if ct != "application/json" {
				return
			}
			var body any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			for _, problem := range checkShape(doc, media["schema"].(map[string]any), body, "$") {
				t.Error(problem)
			}
		})
	}
}

// checkShape checks a decoded JSON value against an OpenAPI 3.0 schema:
// $ref, allOf, type, nullable, required properties, items and properties.
func checkShape(doc map[string]any, schema map[string]any, v any, at string) []string {
	if ref, ok := schema["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		return checkShape(doc, doc["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any), v, at)
	}
	if v == nil {
		if schema["nullable"] == true {
			return nil
		}
		return []string{at + ": null, documented as not nullable"}
	}
	var out []string
	if all, ok := schema["allOf"].([]any); ok {
		for _, s := range all {
			out = append(out, checkShape(doc, s.(map[string]any), v, at)...)
		}
	}
	typ, _ := schema["type"].(string)
	switch typ {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return append(out, at+": not an object")
		}
		for _, r := range asList(schema["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				out = append(out, at+": lacks required property "+r.(string))
			}
		}
		props, _ := schema["properties"].(map[string]any)
		for name, pv := range obj {
			ps, ok := props[name].(map[string]any)
			if !ok {
				if props != nil {
					out = append(out, at+": property "+name+" is not documented")
				}
				continue
			}
			out = append(out, checkShape(doc, ps, pv, at+"."+name)...)
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return append(out, at+": not an array")
		}
		if items, ok := schema["items"].(map[string]any); ok {
			for _, it := range arr {
				out = append(out, checkShape(doc, items, it, at+"[]")...)
			}
		}
	case "string":
		if _, ok := v.(string); !ok {
			out = append(out, at+": not a string")
		}
	case "integer":
		if n, ok := v.(float64); !ok || n != float64(int64(n)) {
			out = append(out, at+": not an integer")
		}
	case "number":
		if _, ok := v.(float64); !ok {
			out = append(out, at+": not a number")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			out = append(out, at+": not a boolean")
		}
	}
	return out
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
