// Command cdclake streams PostgreSQL databases into an Iceberg lake.
// Each subcommand lives in its own file as a type with Run(ctx, args).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

type command interface {
	Run(ctx context.Context, args []string) error
}

// commands maps subcommand names to constructors; each subcommand's file
// registers itself in an init function.
var commands = map[string]func() command{
	"version": func() command { return versionCommand{} },
}

const usage = `cdclake turns PostgreSQL logical replication streams into an Iceberg lake.

Usage:
  cdclake demo      [--dir DIR] [--duration D]
  cdclake ingest    --source PGURL [--name NAME] [--lake URL] [--catalog URL] [--catch-up] ...
  cdclake run       --config cdclake.yaml
  cdclake snapshot  --source PGURL --table schema.table [...]
  cdclake compact   [--lake URL] [--catalog URL] [--table src.schema.table]
  cdclake query     [--lake URL] [--catalog URL] [--format table|csv|json] SQL
  cdclake serve     [--lake URL] [--catalog URL] [--addr ADDR] [--pg-addr ADDR] [--pg-tls-cert FILE --pg-tls-key FILE]
  cdclake status    [--lake URL] [--catalog URL]
  cdclake bench     stream|big-transaction|snapshot|query|freshness|compact|metadata|all
  cdclake version

Run "cdclake COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()})))
	if err := run(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "cdclake:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, usage)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	newCmd, ok := commands[args[0]]
	if !ok {
		return fmt.Errorf("unknown command %q (run cdclake help for the list)", args[0])
	}
	return newCmd().Run(ctx, args[1:])
}

func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("CDCLAKE_LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}

type versionCommand struct{}

func (versionCommand) Run(ctx context.Context, args []string) error {
	fmt.Println("cdclake", Version)
	return nil
}
