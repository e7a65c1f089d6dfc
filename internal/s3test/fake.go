package s3test

import (
	"net/http/httptest"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Fake starts an in-process gofakes3 server (memory backend) on 127.0.0.1.
// It accepts any credentials.
func Fake(t testing.TB) *Server {
	t.Helper()
	faker := gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog()))
	ts := httptest.NewServer(faker.Server())
	t.Cleanup(ts.Close)
	return &Server{
		Name:      "gofakes3",
		Endpoint:  ts.URL,
		AccessKey: "FAKE" + randomHex(8),
		SecretKey: randomHex(20),
		Region:    "us-east-1",
	}
}
