package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cdclake/cdclake/internal/demo"
	"github.com/cdclake/cdclake/internal/pgtest"
)

// monitorData is the demo's three services with every check passing:
// orders 1-30 paid and shipped, 31-36 paid just now, 37-40 placed, over
// the last 20 hours.
var monitorData = map[string][]string{
	"orders": {
		`INSERT INTO customers (name, city) SELECT 'customer ' || g, (ARRAY['Berlin','Lisbon','Oslo','Turin'])[1 + g % 4] FROM generate_series(1, 12) g`,
		`INSERT INTO orders (customer_id, status, amount, created_at, updated_at)
			SELECT 1 + g % 12, CASE WHEN g <= 30 THEN 'shipped' WHEN g <= 36 THEN 'paid' ELSE 'placed' END,
				round((5 + g * 3.7)::numeric, 2), now() - (41 - g) * interval '30 minutes', now()
			FROM generate_series(1, 40) g`,
	},
	"payments": {
		`INSERT INTO payments (order_id, amount, method, status, created_at)
			SELECT g, round((5 + g * 3.7)::numeric, 2), 'card', 'captured', CASE WHEN g <= 30 THEN now() - (41 - g) * interval '30 minutes' ELSE now() END
			FROM generate_series(1, 36) g`,
	},
	"shipping": {
		`INSERT INTO shipments (order_id, carrier, status) SELECT g, 'DHL', 'in_transit' FROM generate_series(1, 30) g`,
	},
}

// TestMonitorDashboard serves a lake of the demo's three services with
// the shipped checks and KPIs: the monitoring routes answer, and in a
// headless Chromium the dashboard lists the sources and tables, draws a
// KPI chart, shows a check failing once the data breaks its rule, and
// signs in with the token.
func TestMonitorDashboard(t *testing.T) {
	chrome := monitorChromium(t)
	pg := pgtest.Start(t)
	dir := t.TempDir()
	for _, db := range demo.Services {
		pg.CreateDB(t, db)
		pg.Exec(t, db, demo.Schemas[db])
		pg.Exec(t, db, monitorData[db]...)
		monitorCatchUp(t, pg, db, dir)
	}
	// two services compacted, shipping not
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, []string{"compact", "--lake", dir, "--table", "orders.public.orders,orders.public.customers,payments.public.payments"}); err != nil {
		t.Fatalf("compact: %v", err)
	}
	t.Setenv(tokenEnv, "")
	base := monitorServe(t, dir, monitorChecks(t))

	t.Run("api", func(t *testing.T) {
		body := monitorGet(t, base+"/", "", 200)
		if !strings.Contains(body, "<title>cdclake</title>") {
			t.Errorf("GET / = %.200s", body)
		}
		monitorGet(t, base+"/ui/app.js", "", 200)
		var checks struct {
			Checks []struct{ Name, Status string }
		}
		monitorWait(t, "every check evaluated", func() bool {
			json.Unmarshal([]byte(monitorGet(t, base+"/v1/checks", "", 200)), &checks)
			return len(checks.Checks) == 3 && !strings.Contains(fmt.Sprint(checks), "pending")
		})
		for _, c := range checks.Checks {
			if c.Status != "ok" {
				t.Errorf("check %s is %s on good data", c.Name, c.Status)
			}
		}
		var hist struct {
			Runs []struct {
				Rows [][]any `json:"rows"`
			} `json:"runs"`
		}
		monitorWait(t, "a stored KPI result", func() bool {
			json.Unmarshal([]byte(monitorGet(t, base+"/v1/kpis/orders_per_hour/history", "", 200)), &hist)
			return len(hist.Runs) > 0
		})
		if len(hist.Runs[0].Rows) < 10 {
			t.Errorf("orders_per_hour has %d rows", len(hist.Runs[0].Rows))
		}
		var tp struct {
			Times   []string
			Sources []struct {
				Source string
				Rows   []int64
			}
		}
		json.Unmarshal([]byte(monitorGet(t, base+"/v1/throughput?window=1h&step=1m", "", 200)), &tp)
		total := int64(0)
		for _, s := range tp.Sources {
			for _, n := range s.Rows {
				total += n
			}
		}
		if len(tp.Times) != 60 || len(tp.Sources) != 3 || total < 40 {
			t.Errorf("throughput: %d steps, %d sources, %d rows", len(tp.Times), len(tp.Sources), total)
		}
		monitorGet(t, base+"/v1/throughput?window=1s&step=1h", "", 400)
		if m := monitorGet(t, base+"/metrics", "", 200); !strings.Contains(m, `cdclake_check_failing{check="paid_not_shipped"} 0`) {
			t.Errorf("/metrics lacks the check gauges")
		}
	})

	t.Run("browser", func(t *testing.T) {
		if chrome == "" {
			t.Skip("no Chromium (apt-get install chromium)")
		}
		ctx, messages := monitorBrowser(t, chrome)
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
			t.Fatal(err)
		}
		for _, sel := range []string{`[data-source="orders"]`, `[data-source="payments"]`, `[data-source="shipping"]`,
			`[data-table="orders.public.orders"]`, `[data-table="orders.public.customers"]`,
			`[data-table="payments.public.payments"]`, `[data-table="shipping.public.shipments"]`,
			`[data-check="paid_not_shipped"][data-status="ok"]`} {
			if err := chromedp.Do(ctx, chromedp.WaitVisible(sel)); err != nil {
				t.Fatalf("%s: %v", sel, err)
			}
		}
		monitorPoll(t, ctx, "a KPI chart with data points",
			`document.querySelector('[data-kpi="orders_per_hour"]')?.dataset.points > 10 && !!document.querySelector('[data-kpi="orders_per_hour"] canvas')`)
		monitorPoll(t, ctx, "a rows/s chart", `!!document.querySelector('[data-source="orders"] .spark canvas')`)
		monitorPoll(t, ctx, "compaction states",
			`document.querySelector('[data-table="orders.public.customers"] .badge')?.textContent === 'current' &&
			 document.querySelector('[data-table="shipping.public.shipments"] .badge')?.textContent === 'none'`)

		// order 1000 was paid 50 minutes ago and nobody shipped it
		pg.Exec(t, "orders", `INSERT INTO orders (id, customer_id, status, amount, created_at) VALUES (1000, 1, 'paid', 77, now() - interval '1 hour')`)
		pg.Exec(t, "payments", `INSERT INTO payments (order_id, amount, method, status, created_at) VALUES (1000, 77, 'card', 'captured', now() - interval '50 minutes')`)
		monitorCatchUp(t, pg, "orders", dir)
		monitorCatchUp(t, pg, "payments", dir)
		monitorPoll(t, ctx, "the failing check with its sample row",
			`(e => e && e.open && /\b1000\b/.test(e.innerText))(document.querySelector('[data-check="paid_not_shipped"][data-status="failing"]'))`)

		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-table="orders.public.orders"] button`))); err != nil {
			t.Fatal(err)
		}
		monitorPoll(t, ctx, "the schema of a table", `/customer_id/.test(document.getElementById('detail').innerText)`)
		if os.Getenv("CDCLAKE_UPDATE_SCREENSHOT") == "1" {
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile("../../docs/dashboard.png", png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range messages() {
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleWarning {
				t.Errorf("console %s", m)
			}
		}
	})

	t.Run("token", func(t *testing.T) {
		const token = "dash-t0ken"
		t.Setenv(tokenEnv, token)
		base := monitorServe(t, dir, monitorChecks(t))
		monitorGet(t, base+"/v1/checks", "", 401)
		if resp, err := http.Get(base + "/"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET / with %s set: %v %v: serve's token guard must let the static page through (dashboard.Public)", tokenEnv, resp.Status, err)
		}
		if chrome == "" {
			t.Skip("no Chromium (apt-get install chromium)")
		}
		ctx, _ := monitorBrowser(t, chrome)
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
			t.Fatal(err)
		}
		monitorPoll(t, ctx, "the sign-in banner", `/needs a token/.test(document.getElementById('banner').innerText)`)
		if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("token"), "wrong\n")); err != nil {
			t.Fatal(err)
		}
		monitorPoll(t, ctx, "the wrong token refused", `/refused/.test(document.getElementById('banner').innerText)`)
		if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("token"), token+"\n"), chromedp.WaitVisible(`[data-source="orders"]`),
			chromedp.WaitVisible(chromedp.ID("logout"))); err != nil {
			t.Fatal(err)
		}
		if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem('cdclake-token')`)); err != nil || got != token {
			t.Errorf("sessionStorage token = %q, %v", got, err)
		}
	})
}

// monitorChromium returns the Chromium to drive, "" when there is none (the
// browser tests then skip, but fail on CI, which installs it).
func monitorChromium(t *testing.T) string {
	path := os.Getenv("CDCLAKE_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Chromium at %s: the dashboard tests need it (apt-get install -y chromium, or set CDCLAKE_CHROMIUM)", path)
		}
		return ""
	}
	return path
}

// monitorBrowser starts a headless Chromium and returns a tab's context and a
// func listing what the page wrote to its console so far.
func monitorBrowser(t *testing.T, path string) (context.Context, func() []chromedp.ConsoleMessage) {
	t.Helper()
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	)
	t.Cleanup(cancel)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTime)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start Chromium: %v", err)
	}
	var mu sync.Mutex
	var got []chromedp.ConsoleMessage
	console := chromedp.Console(ctx) // subscribed from here on
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range console {
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancelTab(); <-done })
	return ctx, func() []chromedp.ConsoleMessage {
		mu.Lock()
		defer mu.Unlock()
		return append([]chromedp.ConsoleMessage{}, got...)
	}
}

// monitorPoll waits until the JavaScript expression is true in the page.
func monitorPoll(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// monitorChecks copies the shipped checks into a folder, every one running
// each second.
func monitorChecks(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	paths, _ := filepath.Glob("../../checks/*.sql")
	if len(paths) == 0 {
		t.Fatal("no shipped checks")
	}
	schedule := regexp.MustCompile(`(?m)^-- schedule: .*$`)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b = schedule.ReplaceAll(b, []byte("-- schedule: 1s"))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// monitorCatchUp ingests everything committed in database db into the lake.
func monitorCatchUp(t *testing.T, pg *pgtest.Cluster, db, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, []string{"ingest", "--source", pg.URL(db), "--catch-up", "--lake", dir}); err != nil {
		t.Fatalf("ingest %s: %v", db, err)
	}
}

// monitorServe runs cdclake serve on the lake with the shipped KPIs until
// the test ends, and returns its base URL once it answers.
func monitorServe(t *testing.T, dir, checks string) string {
	t.Helper()
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--lake", dir, "--kpis", "../../kpis", "--checks", checks, "--pg-addr", "",
			"--addr", fmt.Sprintf("127.0.0.1:%d", port)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	monitorWait(t, "serve to answer", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return base
}

// monitorGet GETs url (with the token, if any) and checks the status.
func monitorGet(t *testing.T, url, token string, status int) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d, want %d: %s", url, resp.StatusCode, status, b)
	}
	return string(b)
}

func monitorWait(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
