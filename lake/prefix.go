package lake

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// prefixed is a Bucket whose keys all live under a fixed prefix of another.
type prefixed struct {
	b      Bucket
	prefix string // no slashes at either end; never empty
	err    error  // set when the prefix is invalid
}

// WithPrefix returns a Bucket that stores key k at prefix/k in b, so that
// several parts of the program can share one bucket without seeing each
// other's keys. Leading and trailing slashes of prefix are ignored; an empty
// prefix returns b itself. An invalid prefix (see ValidateKey) makes every
// method fail with ErrInvalidKey.
func WithPrefix(b Bucket, prefix string) Bucket {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return b
	}
	p := &prefixed{b: b, prefix: prefix}
	if err := ValidateKey(prefix); err != nil {
		p.err = fmt.Errorf("bucket prefix: %w", err)
	}
	return p
}

func (p *prefixed) key(key string) (string, error) {
	if p.err != nil {
		return "", p.err
	}
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return p.prefix + "/" + key, nil
}

// String names the inner bucket and the prefix, for messages.
func (p *prefixed) String() string { return fmt.Sprintf("%v (prefix %s/)", p.b, p.prefix) }

func (p *prefixed) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	k, err := p.key(key)
	if err != nil {
		return err
	}
	return p.b.Put(ctx, k, r, size)
}

func (p *prefixed) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	k, err := p.key(key)
	if err != nil {
		return nil, err
	}
	return p.b.Get(ctx, k)
}

func (p *prefixed) Attributes(ctx context.Context, key string) (Attrs, error) {
	k, err := p.key(key)
	if err != nil {
		return Attrs{}, err
	}
	return p.b.Attributes(ctx, k)
}

func (p *prefixed) Exists(ctx context.Context, key string) (bool, error) {
	k, err := p.key(key)
	if err != nil {
		return false, err
	}
	return p.b.Exists(ctx, k)
}

func (p *prefixed) Delete(ctx context.Context, key string) error {
	k, err := p.key(key)
	if err != nil {
		return err
	}
	return p.b.Delete(ctx, k)
}

func (p *prefixed) Iter(ctx context.Context, prefix string, fn func(key string) error) error {
	if p.err != nil {
		return p.err
	}
	if err := ValidatePrefix(prefix); err != nil {
		return err
	}
	root := p.prefix + "/"
	return p.b.Iter(ctx, root+prefix, func(key string) error {
		return fn(strings.TrimPrefix(key, root))
	})
}

// explain lets Check diagnose failures through the decorator.
func (p *prefixed) explain(ctx context.Context, op probeOp, err error) error {
	return explain(ctx, p.b, op, err)
}
