package chaos

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestChaosProxyClassify(t *testing.T) {
	cases := []struct {
		method, path string
		want         Class
	}{
		{"PUT", "/lake/p/s.public.db/t__changes/data/h=1/00000-0-x.parquet", ClassData},
		{"PUT", "/lake/p/s.public.db/t__changes/metadata/snap-1-x.avro", ClassManifest},
		{"PUT", "/lake/p/s.public.db/t__changes/metadata/00003-x.metadata.json", ClassMetadata},
		{"POST", "/lake/p/x.parquet?uploads", ClassData},
		{"PUT", "/lake/p/_cdclake_check/probe", ClassPut},
		{"GET", "/lake/p/x.parquet", ClassRead},
		{"HEAD", "/lake/p/x.parquet", ClassRead},
		{"GET", "/lake?list-type=2&prefix=p", ClassList},
		{"DELETE", "/lake/p/x", ClassDelete},
	}
	for _, tc := range cases {
		u, err := url.Parse(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := classify(tc.method, u); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.path, got, tc.want)
		}
	}
}

// TestChaosProxyFaults checks each fault kind against a plain backend.
func TestChaosProxyFaults(t *testing.T) {
	var hits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Host", r.Host)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(body))
	}))
	defer backend.Close()
	p, err := NewProxy(backend.URL, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	put := func(key string) (int, string, error) {
		req, _ := http.NewRequest("PUT", p.URL+"/lake/"+key, strings.NewReader("body"))
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if h := resp.Header.Get("X-Host"); resp.StatusCode == 200 && h != strings.TrimPrefix(p.URL, "http://") {
			t.Errorf("backend saw Host %q, want the proxy's (signatures cover it)", h)
		}
		return resp.StatusCode, string(b), nil
	}
	if code, body, err := put("a.parquet"); err != nil || code != 200 || body != "PUT /lake/a.parquet body" {
		t.Fatalf("clean request: %d %q %v", code, body, err)
	}

	remove := p.Inject(Fault{Kind: Fault503, Count: 1, Classes: []Class{ClassData}})
	if code, body, _ := put("b.parquet"); code != 503 || !strings.Contains(body, "<Code>SlowDown</Code>") {
		t.Errorf("503 fault: %d %q", code, body)
	}
	if code, _, _ := put("b.parquet"); code != 200 {
		t.Errorf("after the fault's count: %d", code)
	}
	remove()

	remove = p.Inject(Fault{Kind: Fault500, Classes: []Class{ClassMetadata}})
	if code, _, _ := put("v1.metadata.json"); code != 500 {
		t.Errorf("500 fault: %d", code)
	}
	if code, _, _ := put("c.parquet"); code != 200 {
		t.Errorf("500 fault hit another class: %d", code)
	}
	remove()

	remove = p.Inject(Fault{Kind: FaultReset, Count: 1})
	if _, _, err := put("d.parquet"); err == nil {
		t.Error("reset fault: the request succeeded")
	}
	remove()

	remove = p.Inject(Fault{Kind: FaultHang, Count: 1, Delay: 300 * time.Millisecond})
	start := time.Now()
	if _, _, err := put("e.parquet"); err == nil || time.Since(start) < 300*time.Millisecond {
		t.Errorf("hang fault: err %v after %s", err, time.Since(start))
	}
	remove()

	remove = p.Inject(Fault{Kind: FaultSlow, Delay: 300 * time.Millisecond})
	start = time.Now()
	if code, _, err := put("f.parquet"); err != nil || code != 200 || time.Since(start) < 300*time.Millisecond {
		t.Errorf("slow fault: %d %v after %s", code, err, time.Since(start))
	}
	remove()

	// a trigger fires once, before the request reaches the server
	before := hits.Load()
	fired := 0
	p.Arm(ClassData, false, func() bool {
		fired++
		if hits.Load() != before {
			t.Error("trigger fired after the request reached the server")
		}
		return false
	})
	if _, _, err := put("g.parquet"); err == nil {
		t.Error("a trigger that refused the request let it through")
	}
	if hits.Load() != before {
		t.Error("a refused request reached the server")
	}
	if code, _, _ := put("g.parquet"); code != 200 || fired != 1 {
		t.Errorf("after the trigger: %d, fired %d times", code, fired)
	}
	p.Arm(ClassData, true, func() bool {
		if hits.Load() != before+2 {
			t.Errorf("after-trigger fired before the server answered (%d hits)", hits.Load()-before)
		}
		return true
	})
	if code, _, _ := put("h.parquet"); code != 200 {
		t.Errorf("after-trigger that lets the answer through: %d", code)
	}
	inj := p.Injected()
	if inj[Fault503] != 1 || inj[Fault500] != 1 || inj[FaultReset] != 1 || inj[FaultHang] != 1 || inj[FaultSlow] != 1 {
		t.Errorf("injected counts %v, want one of each", inj)
	}
}

// TestChaosRecorderFindsSecrets checks the secret search itself.
func TestChaosRecorderFindsSecrets(t *testing.T) {
	r, err := NewRecorder(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Secret("hunter2")
	r.Line("a", "connect postgres://u:xxxxx@h/db")
	r.Line("b", "connect postgres://u:hunter2@h/db")
	r.Line("c", "key AKIAX token s3cr3t")
	r.Secret("s3cr3t") // known only after the line was written
	_, _, leaks := r.Stats()
	if len(leaks) != 1 || strings.Contains(leaks[0], "hunter2") || !strings.HasPrefix(leaks[0], "b: ") {
		t.Errorf("leaks while writing = %q, want line b masked", leaks)
	}
	all, err := r.Rescan()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Errorf("rescan found %q, want lines b and c", all)
	}
}
