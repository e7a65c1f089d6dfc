package pgwire

import (
	"fmt"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/cdclake/cdclake/query"
)

// TestAuthMethod checks what the server asks a client for, as
// docs/query.md says: SCRAM-SHA-256 when a password is set (cdclake serve
// with CDCLAKE_TOKEN), a cleartext password only with Options.Cleartext,
// nothing without a password.
func TestAuthMethod(t *testing.T) {
	var e *query.Engine // never reached: no query runs
	for _, tc := range []struct {
		name string
		o    Options
		want pgproto3.BackendMessage
	}{
		{"password", Options{Password: token}, &pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256"}}},
		{"cleartext", Options{Password: token, Cleartext: true}, &pgproto3.AuthenticationCleartextPassword{}},
		{"no password", Options{}, &pgproto3.AuthenticationOk{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := startServer(t, e, tc.o)
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fe := pgproto3.NewFrontend(c, c)
			fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
				Parameters: map[string]string{"user": "analyst", "database": "lake"}})
			if err := fe.Flush(); err != nil {
				t.Fatal(err)
			}
			got, err := fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("server asked %#v, want %#v", got, tc.want)
			}
		})
	}
}
