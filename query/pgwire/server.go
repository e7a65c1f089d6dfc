package pgwire

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/cdclake/cdclake/query"
)

// Engine is what the server needs of query.Engine.
type Engine interface {
	Query(ctx context.Context, sql string, args ...any) (*query.Result, error)
	Describe(ctx context.Context, sql string) (*query.Description, error)
}

var _ Engine = (*query.Engine)(nil)

// Options configure a Server. The zero value of every field means its
// default.
type Options struct {
	// Addr is the listen address of Run (default 127.0.0.1:5433).
	Addr string
	// Password, when set, is required from every client, checked with
	// SCRAM-SHA-256 (it never crosses the wire).
	Password string
	// Cleartext asks for the password in a cleartext password message
	// instead, for clients without SCRAM (use it over loopback or a tunnel).
	Cleartext bool
	// TLS, when set, is offered to clients that ask for it (libpq's
	// sslmode=prefer, require, verify-ca, verify-full), and required: a
	// client that starts without it is refused (28000), so queries,
	// results and the password exchange never travel in the clear. Nil:
	// no TLS, SSL requests are answered "N".
	TLS    *tls.Config
	Logger *slog.Logger
}

// Server answers PostgreSQL clients (psql, BI tools, drivers) with
// read-only queries on an Engine.
type Server struct {
	eng   Engine
	o     Options
	log   *slog.Logger
	scram *scramKeys // nil: no password, or cleartext

	mu       sync.Mutex
	sessions map[uint32]*session // by process ID, for cancel requests
}

// New returns a server for eng.
func New(eng Engine, o Options) *Server {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:5433"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{eng: eng, o: o, log: o.Logger.With("component", "pgwire"), sessions: map[uint32]*session{}}
	if o.Password != "" && !o.Cleartext {
		k, err := newScramKeys(o.Password)
		if err != nil {
			s.log.Warn("scram unavailable, asking for cleartext passwords", "err", err)
		}
		s.scram = k
	}
	return s
}

// Run listens on Options.Addr and serves until ctx is cancelled.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("listen for postgres clients: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves connections from ln until ctx is cancelled, then closes
// ln and every connection.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.log.Info("serving postgres wire protocol", "addr", ln.Addr().String(), "password", s.o.Password != "", "tls", s.o.TLS != nil)
	var wg sync.WaitGroup
	conns := map[net.Conn]bool{}
	var mu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept postgres client: %w", err)
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handle(ctx, c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		}()
	}
}

// session is one client connection.
type session struct {
	srv    *Server
	conn   net.Conn
	be     *pgproto3.Backend
	pid    uint32
	secret []byte
	log    *slog.Logger

	mu     sync.Mutex
	cancel context.CancelFunc // of the running query

	stmts   map[string]*statement
	portals map[string]*portal
	failed  bool // an extended-protocol error: skip until Sync
	tls     bool // the connection is encrypted
}

type statement struct {
	sql    string
	params []uint32 // OIDs, from Parse or Describe
	desc   *query.Description
}

type portal struct {
	stmt    *statement
	args    []any
	formats []int16
	res     *query.Result
	fields  []pgproto3.FieldDescription
	row     int // next row to send, over all records
}

func (s *Server) handle(ctx context.Context, c net.Conn) {
	ss := &session{srv: s, log: s.log.With("client", c.RemoteAddr().String()),
		stmts: map[string]*statement{}, portals: map[string]*portal{}}
	ss.setConn(c)
	if err := ss.startup(); err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errDone) {
			ss.log.Debug("startup", "err", err)
		}
		return
	}
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ss.pid)
		s.mu.Unlock()
		for _, p := range ss.portals {
			p.release()
		}
	}()
	if err := ss.loop(ctx); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && ctx.Err() == nil {
		ss.log.Debug("connection ended", "err", err)
	}
}

var errDone = errors.New("connection done")

// setConn makes c the session's connection.
func (ss *session) setConn(c net.Conn) {
	ss.conn, ss.be = c, pgproto3.NewBackend(c, c)
	ss.be.SetMaxBodyLen(16 << 20)
}

// startup negotiates: TLS when configured (else refused), no GSS
// encryption, answers cancel requests, checks the password.
func (ss *session) startup() error {
	raw := ss.conn
	raw.SetDeadline(time.Now().Add(30 * time.Second))
	defer raw.SetDeadline(time.Time{})
	for {
		msg, err := ss.be.ReceiveStartupMessage()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			cfg := ss.srv.o.TLS
			if cfg == nil || ss.tls {
				if _, err := ss.conn.Write([]byte("N")); err != nil {
					return err
				}
				continue
			}
			if _, err := ss.conn.Write([]byte("S")); err != nil {
				return err
			}
			tc := tls.Server(ss.conn, cfg)
			if err := tc.Handshake(); err != nil {
				return fmt.Errorf("tls handshake: %w", err)
			}
			ss.setConn(tc)
			ss.tls = true
			continue
		case *pgproto3.GSSEncRequest:
			if _, err := ss.conn.Write([]byte("N")); err != nil {
				return err
			}
			continue
		case *pgproto3.CancelRequest:
			ss.srv.cancel(m.ProcessID, m.SecretKey)
			return errDone
		case *pgproto3.StartupMessage:
			if ss.srv.o.TLS != nil && !ss.tls {
				ss.log.Info("refused a connection without TLS")
				ss.be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28000",
					Message: "this server requires TLS: connect with sslmode=require (or verify-full)"})
				ss.be.Flush()
				return errDone
			}
			return ss.accept(m.Parameters)
		default:
			return fmt.Errorf("unexpected startup message %T", msg)
		}
	}
}

func (ss *session) accept(params map[string]string) error {
	user := params["user"]
	if pw := ss.srv.o.Password; pw != "" {
		var err error
		if ss.srv.scram != nil {
			err = ss.scram(ss.srv.scram)
		} else {
			err = ss.cleartext(pw)
		}
		if errors.Is(err, errAuth) {
			ss.log.Info("password authentication failed", "user", user)
			ss.be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01",
				Message: fmt.Sprintf("password authentication failed for user %q", user)})
			ss.be.Flush()
			return errDone
		}
		if err != nil {
			return err
		}
	}
	var b [8]byte
	rand.Read(b[:])
	ss.pid, ss.secret = binary.BigEndian.Uint32(b[:4])&0x7fffffff, b[4:]
	ss.srv.mu.Lock()
	ss.srv.sessions[ss.pid] = ss
	ss.srv.mu.Unlock()
	ss.be.Send(&pgproto3.AuthenticationOk{})
	for _, p := range [][2]string{
		{"server_version", "15.0 (cdclake)"}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"}, {"TimeZone", "UTC"}, {"integer_datetimes", "on"},
		{"standard_conforming_strings", "on"}, {"IntervalStyle", "postgres"},
		{"default_transaction_read_only", "on"}, {"application_name", params["application_name"]},
	} {
		ss.be.Send(&pgproto3.ParameterStatus{Name: p[0], Value: p[1]})
	}
	ss.be.Send(&pgproto3.BackendKeyData{ProcessID: ss.pid, SecretKey: ss.secret})
	ss.be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return ss.be.Flush()
}

// cleartext asks for the password in the clear and compares it in
// constant time (of SHA-256 digests, so the length does not show).
func (ss *session) cleartext(pw string) error {
	ss.be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := ss.be.Flush(); err != nil {
		return err
	}
	ss.be.SetAuthType(pgproto3.AuthTypeCleartextPassword)
	msg, err := ss.be.Receive()
	if err != nil {
		return err
	}
	m, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return errAuth
	}
	got, want := sha256.Sum256([]byte(m.Password)), sha256.Sum256([]byte(pw))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return errAuth
	}
	return nil
}

// cancel interrupts the running query of the session with pid.
func (s *Server) cancel(pid uint32, secret []byte) {
	s.mu.Lock()
	ss := s.sessions[pid]
	s.mu.Unlock()
	if ss == nil || subtle.ConstantTimeCompare(ss.secret, secret) != 1 {
		return
	}
	ss.mu.Lock()
	if ss.cancel != nil {
		ss.cancel()
	}
	ss.mu.Unlock()
}

func (ss *session) loop(ctx context.Context) error {
	for {
		msg, err := ss.be.Receive()
		if err != nil {
			return err
		}
		if _, ok := msg.(*pgproto3.Sync); !ok && ss.failed {
			if _, ok := msg.(*pgproto3.Terminate); !ok {
				continue
			}
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			ss.simpleQuery(ctx, m.String)
		case *pgproto3.Parse:
			ss.parse(m)
		case *pgproto3.Bind:
			ss.bind(m)
		case *pgproto3.Describe:
			ss.describe(ctx, m)
		case *pgproto3.Execute:
			ss.execute(ctx, m)
		case *pgproto3.Close:
			if m.ObjectType == 'S' {
				delete(ss.stmts, m.Name)
			} else if p := ss.portals[m.Name]; p != nil {
				p.release()
				delete(ss.portals, m.Name)
			}
			ss.be.Send(&pgproto3.CloseComplete{})
		case *pgproto3.Sync:
			ss.failed = false
			if p := ss.portals[""]; p != nil {
				p.release()
				delete(ss.portals, "")
			}
			ss.be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Flush:
		case *pgproto3.Terminate:
			return nil
		default:
			ss.sendError(fmt.Errorf("message %T is not supported", msg))
			ss.failed = true
		}
		if _, ok := msg.(*pgproto3.Flush); ok || !isExtended(msg) {
			if err := ss.be.Flush(); err != nil {
				return err
			}
		}
	}
}

// isExtended reports whether msg is part of an extended-protocol batch,
// whose replies wait for Sync or Flush.
func isExtended(msg pgproto3.FrontendMessage) bool {
	switch msg.(type) {
	case *pgproto3.Parse, *pgproto3.Bind, *pgproto3.Describe, *pgproto3.Execute, *pgproto3.Close:
		return true
	}
	return false
}

// run runs a query that a cancel request can interrupt.
func (ss *session) run(ctx context.Context, sql string, args []any) (*query.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ss.mu.Lock()
	ss.cancel = cancel
	ss.mu.Unlock()
	defer func() {
		ss.mu.Lock()
		ss.cancel = nil
		ss.mu.Unlock()
	}()
	res, err := ss.eng().Query(ctx, sql, args...)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		err = errCanceled
	}
	return res, err
}

var errCanceled = errors.New("canceling statement due to user request")

func (ss *session) eng() Engine { return ss.srv.eng }

// simpleQuery answers a simple-query message: each of its statements in
// turn, as PostgreSQL does, until one fails (the rest are not run).
func (ss *session) simpleQuery(ctx context.Context, sql string) {
	defer ss.be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	stmts := splitStatements(sql)
	if len(stmts) == 0 {
		ss.be.Send(&pgproto3.EmptyQueryResponse{})
		return
	}
	for _, st := range stmts {
		if err := ss.simpleStatement(ctx, st); err != nil {
			ss.sendError(err)
			return
		}
	}
}

// simpleStatement answers one statement of a simple-query message.
func (ss *session) simpleStatement(ctx context.Context, sql string) error {
	if tag, ok := sessionCommand(sql); ok {
		ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
		return nil
	}
	res, err := ss.run(ctx, sql, nil)
	if err != nil {
		return err
	}
	defer res.Release()
	fields := fieldsOf(columnsOf(res.Schema), nil)
	ss.be.Send(&pgproto3.RowDescription{Fields: fields})
	p := &portal{res: res, fields: fields}
	if err := ss.sendRows(p, 0); err != nil {
		return err
	}
	ss.complete(res)
	return nil
}

// complete ends a result: its freshness as a parameter status, then the
// command tag.
func (ss *session) complete(res *query.Result) {
	if len(res.Freshness) > 0 {
		ss.be.Send(&pgproto3.ParameterStatus{Name: "cdclake.freshness", Value: query.FreshnessHeader(res.Freshness)})
	}
	ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(fmt.Sprintf("SELECT %d", res.Rows))})
}

// sessionCommand recognizes statements clients send to set up a session
// (SET, BEGIN, ...) and returns PostgreSQL's command tag for them: they
// are acknowledged and ignored, as the endpoint is read-only and has one
// fixed configuration (the session never enters a transaction block).
func sessionCommand(sql string) (tag string, ok bool) {
	f := strings.Fields(strings.ToUpper(strings.ReplaceAll(skipComments(sql), ";", " ")))
	if len(f) == 0 {
		return "", false
	}
	switch f[0] {
	case "SET", "RESET", "BEGIN", "COMMIT", "ROLLBACK":
		return f[0], true
	case "DISCARD":
		if len(f) > 1 {
			return "DISCARD " + f[1], true
		}
		return f[0], true
	case "DEALLOCATE":
		if len(f) > 1 && f[1] == "ALL" {
			return "DEALLOCATE ALL", true
		}
		return f[0], true
	case "START":
		return "START TRANSACTION", true
	case "END":
		return "COMMIT", true
	case "ABORT":
		return "ROLLBACK", true
	}
	return "", false
}

// skipComments returns sql without its leading blanks and comments.
func skipComments(sql string) string {
	for {
		sql = strings.TrimSpace(sql)
		switch {
		case strings.HasPrefix(sql, "--"):
			if i := strings.IndexByte(sql, '\n'); i >= 0 {
				sql = sql[i+1:]
			} else {
				return ""
			}
		case strings.HasPrefix(sql, "/*"):
			sql = sql[blockCommentEnd(sql, 0):]
		default:
			return sql
		}
	}
}

// duckCodes maps DuckDB error types to SQLSTATE codes.
var duckCodes = map[duckdb.ErrorType]string{
	duckdb.ErrorTypeParser:     "42601", // syntax_error
	duckdb.ErrorTypeCatalog:    "42P01", // undefined_table
	duckdb.ErrorTypeBinder:     "42703", // undefined_column
	duckdb.ErrorTypePermission: "42501", // insufficient_privilege
	duckdb.ErrorTypeInterrupt:  "57014", // query_canceled
}

func (ss *session) sendError(err error) {
	code := "XX000"
	switch {
	case errors.Is(err, query.ErrRejected):
		code = "25006" // read_only_sql_transaction
	case errors.Is(err, query.ErrTimeout), errors.Is(err, errCanceled):
		code = "57014" // query_canceled
	case errors.Is(err, query.ErrTooLarge):
		code = "54000" // program_limit_exceeded
	case errors.Is(err, errMultiple):
		code = "42601" // syntax_error
	default:
		var de *duckdb.Error
		if errors.As(err, &de) {
			code = duckCodes[de.Type]
			if code == "" {
				code = "42000"
			}
		}
	}
	ss.be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: code, Message: err.Error()})
}

// LoadTLS returns a server TLS configuration (TLS 1.2 or later) with the
// certificate chain and key of two PEM files, for Options.TLS.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
