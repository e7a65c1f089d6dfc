package main

import (
	"context"
	"testing"
	"time"
)

// TestBenchScenariosTiny runs every scenario once at a tiny size to prove
// the harness works; the numbers are not looked at.
func TestBenchScenariosTiny(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := run(ctx, []string{"bench", "--rows", "3000", "--updates", "1000", "all"}); err != nil {
		t.Fatal(err)
	}
}
