package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/query"
)

// TestServe runs the serve command: SQL over HTTP in every format behind
// the bearer token, KPIs, and psql on the wire endpoint.
func TestServe(t *testing.T) {
	pg := pgtest.Start(t)
	dir := t.TempDir()
	shopLake(t, pg, "shop", "--lake", dir)
	const token = "serve-t0ken"
	t.Setenv(tokenEnv, token)
	httpPort, _ := pgtest.FreePort()
	pgPort, _ := pgtest.FreePort()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--lake", dir, "--kpis", "../../kpis",
			"--addr", fmt.Sprintf("127.0.0.1:%d", httpPort), "--pg-addr", fmt.Sprintf("127.0.0.1:%d", pgPort)})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	post := func(body, accept, tok string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/v1/query", strings.NewReader(body))
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		var resp *http.Response
		var err error
		for i := 0; i < 200; i++ { // the server may still be starting
			if resp, err = http.DefaultClient.Do(req); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
			req.Body = io.NopCloser(strings.NewReader(body))
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	const q = `{"sql": "SELECT status, count(*) AS n FROM public.orders GROUP BY 1 ORDER BY 1"}`

	if resp, body := post(q, "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := post(q, "", "wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	resp, body := post(q, "", token)
	var doc struct {
		Columns []struct{ Name, Type string }  `json:"columns"`
		Rows    [][]any                        `json:"rows"`
		Fresh   []struct{ Source, LSN string } `json:"freshness"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("json: %d %v\n%s", resp.StatusCode, err, body)
	}
	if len(doc.Rows) != 3 || doc.Columns[1].Name != "n" || doc.Columns[1].Type != "bigint" || len(doc.Fresh) != 1 ||
		!strings.HasPrefix(resp.Header.Get(query.FreshnessHTTPHeader), "shop lsn=") {
		t.Errorf("json = %s, headers %v", body, resp.Header)
	}
	if resp, body := post(q, "text/csv", token); !strings.HasPrefix(string(body), "status,n\n") || resp.StatusCode != 200 {
		t.Errorf("csv: %d %s", resp.StatusCode, body)
	}
	resp, body = post(strings.Replace(q, `"}`, `", "format": "parquet"}`, 1), "", token)
	pf, err := file.NewParquetReader(bytes.NewReader(body))
	if err != nil || pf.NumRows() != 3 {
		t.Errorf("parquet: %d %v", resp.StatusCode, err)
	}
	resp, body = post(q, "application/vnd.apache.arrow.stream", token)
	rd, err := ipc.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("arrow: %d %v", resp.StatusCode, err)
	}
	var n int64
	for rd.Next() {
		n += rd.RecordBatch().NumRows()
	}
	if n != 3 {
		t.Errorf("arrow stream has %d rows", n)
	}
	if resp, body := post(`{"sql": "DROP VIEW public.orders"}`, "", token); resp.StatusCode != 400 || !strings.Contains(string(body), `"rejected"`) {
		t.Errorf("DROP VIEW: %d %s", resp.StatusCode, body)
	}

	req, _ := http.NewRequest("GET", base+"/v1/kpis", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	kresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := io.ReadAll(kresp.Body)
	kresp.Body.Close()
	if kresp.StatusCode != 200 || !strings.Contains(string(kb), "orders_per_hour") {
		t.Errorf("GET /v1/kpis: %d %s", kresp.StatusCode, kb)
	}
	// KPI results land in the lake
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, _ := filepath.Glob(filepath.Join(dir, "kpi", "orders_per_hour", "run=*", "result.parquet"))
		if len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no KPI result in the lake")
		}
		time.Sleep(50 * time.Millisecond)
	}

	psql, err := exec.LookPath("psql")
	if bin, berr := pgtest.BinDir(); berr == nil {
		if p := filepath.Join(bin, "psql"); fileExists(p) {
			psql, err = p, nil
		}
	}
	if err != nil {
		t.Skip("no psql")
	}
	cmd := exec.Command(psql, "--no-psqlrc", "-h", "127.0.0.1", "-p", fmt.Sprint(pgPort), "-U", "me", "-d", "lake",
		"-At", "-c", "SELECT count(*) FROM public.orders")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+token)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "90" {
		t.Errorf("psql: %v: %s", err, out)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
