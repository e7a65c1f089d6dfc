package rest

import (
	"testing"
	"time"

	"github.com/cdclake/cdclake/catalog"
)

func TestClosed(t *testing.T) {
	hour := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	grace := 5 * time.Minute
	cases := []struct {
		name     string
		commit   time.Time // watermark commit time
		caughtUp time.Time // from SourceStatus
		catchUp  time.Time // recorded by a catch-up run (Source.CaughtUpAt)
		closed   bool
	}{
		{"nothing known", time.Time{}, time.Time{}, time.Time{}, false},
		{"watermark inside the hour", hour.Add(30 * time.Minute), time.Time{}, time.Time{}, false},
		{"watermark at the hour's end", hour.Add(time.Hour), time.Time{}, time.Time{}, false},
		{"watermark inside the grace", hour.Add(time.Hour + grace - time.Second), time.Time{}, time.Time{}, false},
		{"watermark at end plus grace", hour.Add(time.Hour + grace), time.Time{}, time.Time{}, true},
		{"watermark past it", hour.Add(3 * time.Hour), time.Time{}, time.Time{}, true},
		{"idle, caught up inside the grace", hour.Add(10 * time.Minute), hour.Add(time.Hour + time.Minute), time.Time{}, false},
		{"idle, caught up past the grace", hour.Add(10 * time.Minute), hour.Add(time.Hour + 6*time.Minute), time.Time{}, true},
		{"caught up earlier than the watermark", hour.Add(2 * time.Hour), hour, time.Time{}, true},
		{"idle, a catch-up inside the grace", hour.Add(10 * time.Minute), time.Time{}, hour.Add(time.Hour + time.Minute), false},
		{"idle, a catch-up past the grace", hour.Add(10 * time.Minute), time.Time{}, hour.Add(time.Hour + 6*time.Minute), true},
		{"a catch-up later than the status", hour.Add(10 * time.Minute), hour.Add(time.Hour), hour.Add(2 * time.Hour), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			complete := CompleteThrough(catalog.Source{CommitTime: c.commit, CaughtUpAt: c.catchUp}, SourceStatus{CaughtUpAt: c.caughtUp})
			if got := Closed(hour, complete, grace); got != c.closed {
				t.Errorf("Closed = %v, want %v (complete through %v)", got, c.closed, complete)
			}
		})
	}
}

func TestTableCompleteThrough(t *testing.T) {
	source := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	earlier, later := source.Add(-2*time.Hour), source.Add(time.Minute)
	rec := func(state string, started time.Time) *catalog.TableSnapshot {
		return &catalog.TableSnapshot{State: state, StartedAt: started}
	}
	for _, c := range []struct {
		name     string
		complete time.Time
		rec      *catalog.TableSnapshot
		want     time.Time
	}{
		{"no copy", source, nil, source},
		{"copy done", source, rec(catalog.SnapshotDone, earlier), source},
		{"copy retired", source, rec(catalog.SnapshotDropped, earlier), source},
		{"copy running since earlier", source, rec(catalog.SnapshotRunning, earlier), earlier},
		{"copy running since later", source, rec(catalog.SnapshotRunning, later), source},
		{"source unknown", time.Time{}, rec(catalog.SnapshotRunning, earlier), time.Time{}},
	} {
		if got := TableCompleteThrough(c.complete, c.rec); !got.Equal(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestWALTracker(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var w WALTracker
	if got := w.CaughtUpAt(100); !got.IsZero() {
		t.Fatalf("no samples: %v", got)
	}
	w.Observe(t0, 100)
	w.Observe(t0.Add(time.Minute), 200)
	w.Observe(t0.Add(2*time.Minute), 200) // idle server: same position
	w.Observe(t0.Add(3*time.Minute), 150) // out of order: ignored
	w.Observe(t0.Add(4*time.Minute), 300)
	for _, c := range []struct {
		watermark uint64
		want      time.Time
	}{
		{99, time.Time{}},
		{100, t0},
		{199, t0},
		{200, t0.Add(2 * time.Minute)},
		{250, t0.Add(2 * time.Minute)},
		{300, t0.Add(4 * time.Minute)},
		{100, time.Time{}}, // older samples were forgotten; the watermark never moves back
	} {
		if got := w.CaughtUpAt(c.watermark); !got.Equal(c.want) {
			t.Errorf("CaughtUpAt(%d) = %v, want %v", c.watermark, got, c.want)
		}
	}
}
