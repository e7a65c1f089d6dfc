package procstat

import (
	"os"
	"testing"
	"time"
)

func TestReadsThisProcess(t *testing.T) {
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	if rss := PeakRSS(); rss < int64(len(buf)) {
		t.Errorf("peak RSS %d after touching %d bytes", rss, len(buf))
	}
	for start := time.Now(); PIDCPU(os.Getpid()) == 0; {
		if time.Since(start) > 5*time.Second {
			t.Fatal("no CPU time after 5 s of spinning")
		}
	}
	if PIDCPU(-1) != 0 {
		t.Error("CPU time of a process that cannot exist")
	}
}
