package rest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cdclake/cdclake/lake"
)

// Lists that can grow long take limit (default 100, at most 1000) and
// page_token (from the previous page's next_page_token).
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// page is a window on an ordered list.
type page struct{ offset, limit int }

func parsePage(q url.Values, limitKey, tokenKey string, def int) (page, error) {
	p := page{limit: def}
	if v := q.Get(limitKey); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return p, fmt.Errorf("%s must be between 1 and %d", limitKey, maxLimit)
		}
		p.limit = n
	}
	if v := q.Get(tokenKey); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		n, ok := strings.CutPrefix(string(b), "offset:")
		off, perr := strconv.Atoi(n)
		if err != nil || !ok || perr != nil || off < 0 {
			return p, fmt.Errorf("bad %s", tokenKey)
		}
		p.offset = off
	}
	return p, nil
}

// cut returns the page's items and the token of the next page (nil at the end).
func cut[T any](items []T, p page) ([]T, *string) {
	if p.offset >= len(items) {
		return []T{}, nil
	}
	if p.limit <= 0 || p.offset+p.limit >= len(items) {
		return items[p.offset:], nil
	}
	next := base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(p.offset+p.limit)))
	return items[p.offset : p.offset+p.limit], &next
}

// timeRange reads the since (inclusive) and until (exclusive) filters.
func timeRange(q url.Values) (since, until time.Time, err error) {
	for _, k := range []string{"since", "until"} {
		v := q.Get(k)
		if v == "" {
			continue
		}
		t, perr := time.Parse(time.RFC3339, v)
		if perr != nil {
			return since, until, fmt.Errorf("%s must be an RFC 3339 time such as 2026-03-01T10:00:00Z", k)
		}
		if k == "since" {
			since = t
		} else {
			until = t
		}
	}
	return since, until, nil
}

func inRange(t, since, until time.Time) bool {
	return (since.IsZero() || !t.Before(since)) && (until.IsZero() || t.Before(until))
}

func ref(r *http.Request) TableRef {
	return TableRef{Source: r.PathValue("source"), Schema: r.PathValue("schema"), Table: r.PathValue("table")}
}

// fail answers an error from the Reader: 404 for ErrNotFound, else 500
// (logged, with a generic message).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrNotFound) {
		writeError(w, r, http.StatusNotFound, "NotFoundException", err.Error())
		return
	}
	if r.Context().Err() != nil {
		return // the client went away
	}
	s.o.Logger.Error("request failed", "path", r.URL.Path, "err", err)
	writeError(w, r, http.StatusInternalServerError, "InternalServerError", "internal error (see the server log)")
}

func badRequest(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, http.StatusBadRequest, "BadRequestException", err.Error())
}

func (s *Server) sources(w http.ResponseWriter, r *http.Request) {
	list, err := s.reader.Sources(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, map[string]any{"sources": list})
}

func (s *Server) source(w http.ResponseWriter, r *http.Request) {
	src, err := s.reader.Source(r.Context(), r.PathValue("source"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, src)
}

func (s *Server) tables(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := parsePage(q, "limit", "page_token", defaultLimit)
	if err != nil {
		badRequest(w, r, err)
		return
	}
	list, err := s.reader.Tables(r.Context(), q.Get("source"), q.Get("schema"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	items, next := cut(list, p)
	writeJSON(w, map[string]any{"tables": items, "next_page_token": next})
}

func (s *Server) table(w http.ResponseWriter, r *http.Request) {
	t, err := s.reader.Table(r.Context(), ref(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, t)
}

func (s *Server) schema(w http.ResponseWriter, r *http.Request) {
	sc, err := s.reader.Schema(r.Context(), ref(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, sc)
}

func (s *Server) snapshots(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind := q.Get("kind")
	if kind == "" {
		kind = "snapshot"
	}
	if kind != "snapshot" && kind != "changelog" {
		badRequest(w, r, errors.New("kind must be snapshot or changelog"))
		return
	}
	p, err := parsePage(q, "limit", "page_token", defaultLimit)
	if err != nil {
		badRequest(w, r, err)
		return
	}
	since, until, err := timeRange(q)
	if err != nil {
		badRequest(w, r, err)
		return
	}
	list, err := s.reader.Snapshots(r.Context(), ref(r), kind)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var kept []Snapshot
	for _, sn := range list {
		if inRange(sn.Time, since, until) {
			kept = append(kept, sn)
		}
	}
	items, next := cut(kept, p)
	writeJSON(w, map[string]any{"kind": kind, "snapshots": items, "next_page_token": next})
}

func (s *Server) partitions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := parsePage(q, "limit", "page_token", defaultLimit)
	if err != nil {
		badRequest(w, r, err)
		return
	}
	since, until, err := timeRange(q)
	if err != nil {
		badRequest(w, r, err)
		return
	}
	closed := q.Get("closed")
	if closed != "" && closed != "true" && closed != "false" {
		badRequest(w, r, errors.New("closed must be true or false"))
		return
	}
	t := ref(r)
	list, complete, err := s.reader.Partitions(r.Context(), t)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var kept []Partition
	for _, pt := range list {
		if inRange(pt.Hour, since, until) && (closed == "" || strconv.FormatBool(pt.Closed) == closed) {
			kept = append(kept, pt)
		}
	}
	items, next := cut(kept, p)
	writeJSON(w, map[string]any{
		"source": t.Source, "schema": t.Schema, "table": t.Table,
		"complete_through": timePtr(complete), "grace_seconds": int(s.o.Grace.Seconds()),
		"partitions": items, "next_page_token": next,
	})
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request) {
	hour, err := ParseHour(r.PathValue("hour"))
	if err != nil {
		badRequest(w, r, err)
		return
	}
	m, err := s.reader.Manifest(r.Context(), ref(r), hour)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, m)
}

// object serves a Parquet object of the lake, so a warehouse can pull
// files through the API (HEAD gives size and checksum-free metadata).
func (s *Server) object(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if s.o.Bucket == nil {
		writeError(w, r, http.StatusNotFound, "NotFoundException", "this server has no lake bucket")
		return
	}
	if lake.ValidateKey(key) != nil || !strings.HasSuffix(key, ".parquet") {
		writeError(w, r, http.StatusNotFound, "NotFoundException", "only Parquet data files of the lake are served")
		return
	}
	attrs, err := s.o.Bucket.Attributes(r.Context(), key)
	if errors.Is(err, lake.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, "NotFoundException", "no such object")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.apache.parquet")
	w.Header().Set("Content-Length", strconv.FormatInt(attrs.Size, 10))
	w.Header().Set("Last-Modified", attrs.ModTime.UTC().Format(http.TimeFormat))
	if r.Method == http.MethodHead {
		return
	}
	rc, err := s.o.Bucket.Get(r.Context(), key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		s.o.Logger.Debug("object download cut short", "key", key, "err", err)
	}
}
