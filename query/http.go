package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
)

// Querier runs read-only SQL; *Engine is one.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (*Result, error)
}

var _ Querier = (*Engine)(nil)

// FreshnessHTTPHeader is the HTTP response header carrying a result's
// freshness, as FreshnessHeader formats it.
const FreshnessHTTPHeader = "Cdclake-Freshness"

// Request is the body of POST /v1/query.
type Request struct {
	SQL string `json:"sql"`
	// Format is json, csv, table, parquet or arrow; when empty the Accept
	// header decides (default json).
	Format string `json:"format,omitempty"`
}

// Handler serves POST /v1/query: one read-only SELECT per request, the
// result in the format asked for, its freshness in the Cdclake-Freshness
// header (and the JSON body). Errors are JSON {"error": {"message",
// "type", "code"}}.
func Handler(q Querier, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "query-http")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			WriteError(w, http.StatusMethodNotAllowed, "method", errors.New("use POST with a JSON body {\"sql\": ...}"))
			return
		}
		var req Request
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			WriteError(w, http.StatusBadRequest, "bad_request", fmt.Errorf("read request body: %w", err))
			return
		}
		if strings.TrimSpace(req.SQL) == "" {
			WriteError(w, http.StatusBadRequest, "bad_request", errors.New(`the body needs "sql"`))
			return
		}
		format, err := negotiate(req.Format, r.Header.Get("Accept"))
		if err != nil {
			WriteError(w, http.StatusNotAcceptable, "format", err)
			return
		}
		res, err := q.Query(r.Context(), req.SQL)
		if err != nil {
			status, code := ErrorStatus(err)
			if status == http.StatusInternalServerError {
				log.Error("query", "err", err)
			}
			WriteError(w, status, code, err)
			return
		}
		defer res.Release()
		WriteResult(w, res, format, log)
	})
}

// WriteResult writes a result as an HTTP response in format, with the
// freshness header. The body is built first, so an encoding error is a
// clean 500.
func WriteResult(w http.ResponseWriter, res *Result, format string, log *slog.Logger) {
	var buf bytes.Buffer
	if err := Write(&buf, res, format); err != nil {
		log.Error("write result", "format", format, "err", err)
		WriteError(w, http.StatusInternalServerError, "encode", err)
		return
	}
	w.Header().Set("Content-Type", ContentType(format))
	w.Header().Set("Cache-Control", "no-store")
	if len(res.Freshness) > 0 {
		w.Header().Set(FreshnessHTTPHeader, FreshnessHeader(res.Freshness))
	}
	w.Header().Set("Cdclake-Rows", fmt.Sprint(res.Rows))
	w.WriteHeader(http.StatusOK)
	io.Copy(w, &buf)
}

// negotiate picks the output format: the request's, else the Accept
// header's, else JSON.
func negotiate(field, accept string) (string, error) {
	if field != "" {
		if ContentType(field) == "" {
			return "", fmt.Errorf("unknown format %q (use json, csv, table, parquet or arrow)", field)
		}
		return field, nil
	}
	if accept == "" {
		return FormatJSON, nil
	}
	if f, ok := FormatFromAccept(accept); ok {
		return f, nil
	}
	return "", fmt.Errorf("cannot answer Accept: %s (offer: application/json, text/csv, text/plain, application/vnd.apache.parquet, application/vnd.apache.arrow.stream)", accept)
}

// ErrorStatus maps a query error to an HTTP status and an error code.
func ErrorStatus(err error) (int, string) {
	var de *duckdb.Error
	switch {
	case errors.Is(err, ErrRejected):
		return http.StatusBadRequest, "rejected"
	case errors.Is(err, ErrTimeout):
		return http.StatusGatewayTimeout, "timeout"
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, context.Canceled):
		return 499, "canceled"
	case errors.As(err, &de):
		return http.StatusBadRequest, "sql"
	}
	return http.StatusInternalServerError, "internal"
}

// errorBody is the error model of every cdclake HTTP answer (the Iceberg
// REST one, as docs/api.md describes): {"error": {"message", "type", "code"}}.
type errorBody struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    int    `json:"code"`
	} `json:"error"`
}

// WriteError writes an error answer with status; typ names the kind of
// error (rejected, timeout, too_large, sql, ...).
func WriteError(w http.ResponseWriter, status int, typ string, err error) {
	var b errorBody
	b.Error.Message, b.Error.Type, b.Error.Code = err.Error(), typ, status
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(b)
}
