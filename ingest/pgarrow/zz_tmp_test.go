package pgarrow

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/internal/pgtest"
)

func TestZZTmp(t *testing.T) {
	c := pgtest.Start(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"select string_agg(proname||'='||provolatile, ' ') from pg_proc where proname in ('array_out','array_dims','array_ndims')",
		"select ('4714-11-24 BC'::date - '1970-01-01'::date)::text",
		"select '{{1,2},{3,4}}'::int[]::text",
	} {
		var s string
		if err := conn.QueryRow(ctx, q).Scan(&s); err != nil {
			t.Fatal(err)
		}
		t.Log(s)
	}
	_, err = conn.Exec(ctx, "create table g (a int[], d text generated always as (array_dims(a)) stored)")
	t.Log("generated array_dims:", err)
	_, err = conn.Exec(ctx, "create table g2 (a int[], d text generated always as (a::text) stored)")
	t.Log("generated a::text:", err)
}
