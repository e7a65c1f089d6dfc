package config

import (
	"strings"
	"testing"
	"time"
)

func TestMergeKeys(t *testing.T) {
	data := `
sources:
  - &busy
    name: orders
    url: postgres://h/orders
    flush-interval: 5s
    memory-budget: 1GiB
  - <<: *busy
    name: payments
    url: postgres://h/payments
    memory-budget: 2GiB
`
	c, err := Parse([]byte(data), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Sources[1]
	if p.Name != "payments" || p.URL != "postgres://h/payments" || p.FlushInterval != 5*time.Second || p.MemoryBudget != 2<<30 {
		t.Errorf("got %+v", p)
	}
}

func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	b.WriteString("compaction:\n  <<: [*a8, *a8]\n")
	_, err := Parse([]byte(b.String()), env(nil))
	if err == nil {
		t.Fatal("accepted")
	}
	if got := errorLines(t, err); len(got) > 40 {
		t.Errorf("%d errors", len(got))
	}
}
