package chaos

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
)

// WireProxy forwards TCP connections to a server (PostgreSQL) and calls a
// function when a client sends given bytes, before they are forwarded:
// how the suite kills cdclake at an exact step of its start-up, named by
// the text of the query that step sends. A pattern split across two
// writes of the client is not seen; PostgreSQL clients write a query in
// one message.
type WireProxy struct {
	// Addr is the proxy's host:port on 127.0.0.1.
	Addr string

	target string
	ln     net.Listener

	mu      sync.Mutex
	watches []*watch
	conns   map[net.Conn]bool
}

type watch struct {
	after, pattern []byte
	armed          bool // after has been seen (or is empty)
	fn             func()
}

// NewWireProxy starts a proxy to target (host:port).
func NewWireProxy(target string) (*WireProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	p := &WireProxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]bool{}}
	go p.accept()
	return p, nil
}

// When calls fn once, when a client sends pattern after some client sent
// after ("" for no condition).
func (p *WireProxy) When(after, pattern string, fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watches = append(p.watches, &watch{after: []byte(after), pattern: []byte(pattern), armed: after == "", fn: fn})
}

// Close stops the proxy and its connections.
func (p *WireProxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	return err
}

func (p *WireProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		go func() {
			io.Copy(c, s)
			c.Close()
		}()
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					p.inspect(buf[:n])
					if _, werr := s.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			s.Close()
		}()
	}
}

// inspect runs the watches that data completes.
func (p *WireProxy) inspect(data []byte) {
	p.mu.Lock()
	var fire []func()
	keep := p.watches[:0]
	for _, w := range p.watches {
		if w.armed && bytes.Contains(data, w.pattern) {
			fire = append(fire, w.fn)
			continue
		}
		if !w.armed && bytes.Contains(data, w.after) {
			w.armed = true
		}
		keep = append(keep, w)
	}
	p.watches = keep
	p.mu.Unlock()
	for _, fn := range fire {
		fn()
	}
}
