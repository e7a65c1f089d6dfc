package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemoTerminalTellsTheStory runs a short demo and reads what a
// newcomer sees: the terminal (stdout, and stderr where main's logger
// writes) holds the progress lines, the KPI tables, the lake-versus-
// PostgreSQL table and what to run next, and no INFO log line; the
// ingesters' and the compactor's INFO lines are in the log file the
// first line names.
func TestDemoTerminalTellsTheStory(t *testing.T) {
	var stderr bytes.Buffer // as main: the default logger writes to stderr
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&stderr, nil)))
	defer slog.SetDefault(prev)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "lake")
	var stdout bytes.Buffer
	err := (&demoCommand{out: &stdout}).Run(ctx, []string{"--dir", dir, "--duration", "3s", "--rate", "10"})
	t.Log("stdout:\n" + stdout.String())
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*bytes.Buffer{"stdout": &stdout, "stderr": &stderr} {
		for _, line := range strings.Split(b.String(), "\n") {
			if strings.Contains(line, "level=INFO") {
				t.Errorf("%s has a log line: %s", name, line)
			}
		}
	}
	logFile := filepath.Join(dir, "demo.log")
	first, _, _ := strings.Cut(stdout.String(), "\n")
	if !strings.Contains(first, logFile) {
		t.Errorf("first line %q does not name the log file %s", first, logFile)
	}
	for _, want := range []string{"orders by status", "orders.public.orders", "postgres", "Query it:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	logs, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"level=INFO", "component=ingest", "component=compact"} {
		if !bytes.Contains(logs, []byte(want)) {
			t.Errorf("the log file lacks %q", want)
		}
	}
}
