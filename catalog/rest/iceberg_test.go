package rest

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	_ "github.com/apache/iceberg-go/catalog/rest" // registers the "rest" catalog type
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/lakeformat"
)

// TestIcebergREST attaches iceberg-go's own REST client to the server and
// reads a table back through it.
func TestIcebergREST(t *testing.T) {
	f := shopLake(t)
	ctx := context.Background()
	const token = "rest-client-token"
	ts := f.server(t, Options{Token: token})

	get(t, ts, "", "/iceberg/v1/config", http.StatusUnauthorized, nil)
	var cfg struct {
		Defaults  map[string]string
		Overrides map[string]string
	}
	get(t, ts, token, "/iceberg/v1/config", http.StatusOK, &cfg)
	if cfg.Defaults == nil || cfg.Overrides == nil {
		t.Fatalf("config %+v", cfg)
	}

	cat, err := icecat.Load(ctx, "lake", iceberg.Properties{"type": "rest", "uri": ts.URL + "/iceberg", "token": token})
	if err != nil {
		t.Fatal(err)
	}
	top, err := cat.ListNamespaces(ctx, nil)
	if err != nil || len(top) != 1 || !slices.Equal(top[0], []string{"shop"}) {
		t.Fatalf("top namespaces %v, %v", top, err)
	}
	children, err := cat.ListNamespaces(ctx, table.Identifier{"shop"})
	if err != nil || len(children) != 1 || !slices.Equal(children[0], []string{"shop", "public"}) {
		t.Fatalf("namespaces under shop %v, %v", children, err)
	}
	if _, err := cat.LoadNamespaceProperties(ctx, table.Identifier{"shop", "public"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.LoadNamespaceProperties(ctx, table.Identifier{"nope"}); !errors.Is(err, icecat.ErrNoSuchNamespace) {
		t.Errorf("missing namespace: %v", err)
	}
	var names []string
	for id, err := range cat.ListTables(ctx, table.Identifier{"shop", "public"}) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, id[len(id)-1])
	}
	if !slices.Equal(names, []string{"customers__changes", "orders__changes"}) {
		t.Fatalf("tables %v", names)
	}

	id := lakeformat.ChangelogIdent("shop", "public", "orders")
	tbl, err := cat.LoadTable(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	local, err := f.cat.Iceberg().LoadTable(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if tbl.MetadataLocation() != local.MetadataLocation() || !tbl.Metadata().Equals(local.Metadata()) {
		t.Errorf("metadata differs from the SQL catalog's")
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	got, want := changeRows(t, at), scanChanges(t, f.cat, id)
	if len(got) != len(want) || len(got) == 0 {
		t.Errorf("REST scan read %d rows, SQL catalog scan %d", len(got), len(want))
	}
	if ok, err := cat.CheckTableExists(ctx, lakeformat.ChangelogIdent("shop", "public", "nope")); ok || err != nil {
		t.Errorf("missing table exists=%v, %v", ok, err)
	}
	if _, err := cat.LoadTable(ctx, lakeformat.ChangelogIdent("shop", "public", "nope")); !errors.Is(err, icecat.ErrNoSuchTable) {
		t.Errorf("missing table: %v", err)
	}

	// the catalog is read-only
	if err := cat.CreateNamespace(ctx, table.Identifier{"x"}, nil); err == nil {
		t.Error("namespace created through a read-only catalog")
	}
	if _, err := tbl.AppendTable(ctx, at, 10, nil); err == nil {
		t.Error("append committed through a read-only catalog")
	}
	for _, p := range []string{"/iceberg/v1/namespaces", "/iceberg/v1/namespaces/shop%1Fpublic/tables/orders__changes"} {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+p, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotAcceptable {
			t.Errorf("POST %s: %d, want 406", p, resp.StatusCode)
		}
	}
}
