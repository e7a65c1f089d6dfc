package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Class is the kind of an S3 request as the proxy sees it.
type Class string

// Request classes. Upload and Commit are what a flush does: its Parquet
// files first, then the Iceberg commit's manifests and metadata.
const (
	ClassData     Class = "data-put"     // PUT of a .parquet object (or a part of one)
	ClassManifest Class = "manifest-put" // PUT of an Avro manifest or manifest list
	ClassMetadata Class = "metadata-put" // PUT of a table's metadata.json
	ClassPut      Class = "other-put"    // any other write (lake probe, ...)
	ClassRead     Class = "read"         // GET and HEAD
	ClassList     Class = "list"         // bucket listings
	ClassDelete   Class = "delete"
)

// classify names the class of a request to a path-style S3 endpoint.
func classify(method string, u *url.URL) Class {
	key := u.Path
	switch {
	case method == http.MethodDelete:
		return ClassDelete
	case method == http.MethodGet && strings.Count(strings.Trim(key, "/"), "/") == 0:
		return ClassList
	case method == http.MethodGet || method == http.MethodHead:
		return ClassRead
	case strings.HasSuffix(key, ".parquet"):
		return ClassData
	case strings.HasSuffix(key, ".avro"):
		return ClassManifest
	case strings.HasSuffix(key, ".metadata.json"):
		return ClassMetadata
	}
	return ClassPut
}

// Fault kinds the proxy injects.
type FaultKind string

const (
	Fault500   FaultKind = "s3-500"     // 500 InternalError
	Fault503   FaultKind = "s3-503"     // 503 SlowDown
	FaultSlow  FaultKind = "s3-slow"    // the answer comes after Delay
	FaultReset FaultKind = "s3-reset"   // the connection is reset (TCP RST), no answer
	FaultHang  FaultKind = "s3-timeout" // no answer for Delay (forever if 0), then a reset
)

// Fault is one rule: requests of the given classes (all when empty) get
// Kind with probability Prob (1 when 0), at most Count times (no limit
// when 0), while the rule is installed.
type Fault struct {
	Kind    FaultKind
	Classes []Class
	Prob    float64
	Count   int
	Delay   time.Duration
}

func (f *Fault) matches(c Class) bool {
	if len(f.Classes) == 0 {
		return true
	}
	for _, x := range f.Classes {
		if x == c {
			return true
		}
	}
	return false
}

// Proxy is a fault-injecting reverse proxy in front of an S3 server. The
// client signs its requests for the proxy's address, and the proxy keeps
// the Host header, so signatures stay valid.
type Proxy struct {
	// URL is the proxy's base URL, to use as the S3 endpoint.
	URL string

	target *url.URL
	srv    *http.Server
	ln     net.Listener
	client *http.Client
	done   chan struct{}

	mu       sync.Mutex
	rng      *rand.Rand
	faults   []*Fault
	triggers []*trigger
	injected map[FaultKind]int
	requests map[Class]int
}

type trigger struct {
	class Class
	after bool // after the answer came back, not before forwarding
	fn    func() (forward bool)
}

// NewProxy starts a proxy on 127.0.0.1 that forwards to target.
func NewProxy(target string, seed uint64) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("parse proxy target: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	p := &Proxy{
		URL:      "http://" + ln.Addr().String(),
		target:   u,
		ln:       ln,
		client:   &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		done:     make(chan struct{}),
		rng:      rand.New(rand.NewPCG(seed, 0x5eed)),
		injected: map[FaultKind]int{},
		requests: map[Class]int{},
	}
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(ln)
	return p, nil
}

// Close stops the proxy; requests held by a hang fault end with a reset.
func (p *Proxy) Close() error {
	close(p.done)
	return p.srv.Close()
}

// Inject installs a fault rule and returns the function that removes it.
func (p *Proxy) Inject(f Fault) (remove func()) {
	fp := &f
	p.mu.Lock()
	p.faults = append(p.faults, fp)
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, x := range p.faults {
			if x == fp {
				p.faults = append(p.faults[:i], p.faults[i+1:]...)
				return
			}
		}
	}
}

// Clear removes every fault rule and trigger.
func (p *Proxy) Clear() {
	p.mu.Lock()
	p.faults, p.triggers = nil, nil
	p.mu.Unlock()
}

// Arm makes the next request of class c call fn, once: before it is
// forwarded, or with after set, once its answer came back and before the
// client gets it. fn reports whether the request goes on; when it does
// not, the client's connection is reset. The returned function disarms
// the trigger if it has not fired.
func (p *Proxy) Arm(c Class, after bool, fn func() (forward bool)) (disarm func()) {
	tg := &trigger{class: c, after: after, fn: fn}
	p.mu.Lock()
	p.triggers = append(p.triggers, tg)
	p.mu.Unlock()
	return func() { p.takeTrigger(func(x *trigger) bool { return x == tg }) }
}

func (p *Proxy) takeTrigger(match func(*trigger) bool) *trigger {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.triggers {
		if match(x) {
			p.triggers = append(p.triggers[:i], p.triggers[i+1:]...)
			return x
		}
	}
	return nil
}

// Injected returns how many requests got each fault kind.
func (p *Proxy) Injected() map[FaultKind]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[FaultKind]int{}
	for k, v := range p.injected {
		out[k] = v
	}
	return out
}

// Requests returns how many requests of each class the proxy saw.
func (p *Proxy) Requests() map[Class]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[Class]int{}
	for k, v := range p.requests {
		out[k] = v
	}
	return out
}

// pick returns the fault to inject into a request of class c, if any.
func (p *Proxy) pick(c Class) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests[c]++
	for _, f := range p.faults {
		if !f.matches(c) || (f.Prob > 0 && p.rng.Float64() >= f.Prob) {
			continue
		}
		if f.Count > 0 {
			if f.Count--; f.Count == 0 {
				f.Count = -1 // used up
			}
		} else if f.Count < 0 {
			continue
		}
		p.injected[f.Kind]++
		cp := *f
		return &cp
	}
	return nil
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := classify(r.Method, r.URL)
	// the whole body first: a request goes on even if its client dies
	// meanwhile, as it would when the client's last packet was in flight
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if tg := p.takeTrigger(func(x *trigger) bool { return x.class == c && !x.after }); tg != nil && !tg.fn() {
		reset(w)
		return
	}
	f := p.pick(c)
	if f != nil {
		switch f.Kind {
		case Fault500:
			s3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
			return
		case Fault503:
			s3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
			return
		case FaultReset:
			reset(w)
			return
		case FaultHang:
			var limit <-chan time.Time
			if f.Delay > 0 {
				limit = time.After(f.Delay)
			}
			select {
			case <-limit:
			case <-r.Context().Done():
			case <-p.done:
			}
			reset(w)
			return
		case FaultSlow:
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				return
			}
		}
	}
	resp, err := p.forward(r, body)
	if err != nil {
		s3Error(w, http.StatusBadGateway, "BadGateway", err.Error())
		return
	}
	defer resp.Body.Close()
	if tg := p.takeTrigger(func(x *trigger) bool { return x.class == c && x.after }); tg != nil && !tg.fn() {
		reset(w)
		return
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// forward sends the request to the S3 server, detached from the client's
// connection.
func (p *Proxy) forward(r *http.Request, body []byte) (*http.Response, error) {
	u := *p.target
	u.Path = r.URL.Path
	u.RawPath = r.URL.RawPath
	u.RawQuery = r.URL.RawQuery
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, err
	}
	for k, vs := range r.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Expect":
			continue
		}
		out.Header[k] = vs
	}
	out.Host = r.Host // signed by the client
	out.ContentLength = int64(len(body))
	resp, err := p.client.Do(out)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>chaos</RequestId></Error>`, code, msg)
}

// reset closes the client's connection with a TCP RST.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}
