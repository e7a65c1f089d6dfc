package lake

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ProbePrefix is where Check writes its short-lived probe objects.
const ProbePrefix = "_cdclake/probe-"

// Check probes a bucket at start-up: it writes a small object under
// ProbePrefix, lists it, reads it back and deletes it. A failure comes back
// as one line naming the problem and the fix, such as
//
//	lake /x/y is not writable: permission denied (make the folder writable by this user or choose another --lake)
//	s3 bucket "b" does not exist (create it or fix --lake)
//	access to s3 bucket "b" denied: InvalidAccessKeyId (check AWS credentials/policy)
//
// The underlying error stays reachable with errors.Is and errors.As.
func Check(ctx context.Context, b Bucket) error {
	var id [8]byte
	rand.Read(id[:])
	key := ProbePrefix + hex.EncodeToString(id[:])
	want := []byte("cdclake probe " + key + "\n")

	if err := b.Put(ctx, key, bytes.NewReader(want), int64(len(want))); err != nil {
		return explain(ctx, b, opWrite, err)
	}
	seen := false
	err := b.Iter(ctx, key, func(k string) error {
		seen = seen || k == key
		return nil
	})
	if err == nil && !seen {
		err = fmt.Errorf("probe object %q missing from the listing", key)
	}
	if err != nil {
		b.Delete(context.WithoutCancel(ctx), key)
		return explain(ctx, b, opList, err)
	}
	if err := readBack(ctx, b, key, want); err != nil {
		b.Delete(context.WithoutCancel(ctx), key)
		return explain(ctx, b, opRead, err)
	}
	if err := b.Delete(ctx, key); err != nil {
		return explain(ctx, b, opDelete, err)
	}
	return nil
}

func readBack(ctx context.Context, b Bucket, key string, want []byte) error {
	rc, err := b.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read object %q: %w", key, err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("probe object %q read back as %d bytes that differ from the %d written", key, len(got), len(want))
	}
	return nil
}

// probeOp names the step of Check that failed.
type probeOp string

const (
	opWrite  probeOp = "write"
	opList   probeOp = "list"
	opRead   probeOp = "read"
	opDelete probeOp = "delete"
)

// explainer is implemented by backends (and decorators) that can turn a
// failed probe step into a one-line diagnosis.
type explainer interface {
	explain(ctx context.Context, op probeOp, err error) error
}

func explain(ctx context.Context, b Bucket, op probeOp, err error) error {
	if e, ok := b.(explainer); ok {
		return e.explain(ctx, op, err)
	}
	return &problem{msg: fmt.Sprintf("lake %v: %s probe object: %s", b, op, oneLine(err)), err: err}
}

// problem is a one-line diagnosis that still unwraps to the cause.
type problem struct {
	msg string
	err error
}

func (p *problem) Error() string { return p.msg }
func (p *problem) Unwrap() error { return p.err }

// oneLine flattens an error message onto one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// contextProblem reports a cancelled or timed-out check plainly.
func contextProblem(what string, op probeOp, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &problem{msg: fmt.Sprintf("%s: %s probe object: %s", what, op, oneLine(err)), err: err}
	}
	return nil
}
