package pgwire

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it: the password
// never crosses the wire and the client checks the server knows it too.
// No channel binding (the endpoint has no TLS).

const scramIterations = 4096

// scramKeys are derived once from the password and a random salt.
type scramKeys struct {
	salt                 []byte
	storedKey, serverKey []byte
}

func newScramKeys(password string) (*scramKeys, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("derive scram keys: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	return &scramKeys{salt: salt, storedKey: stored[:], serverKey: hmacSHA256(salted, "Server Key")}, nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

var errAuth = errors.New("password authentication failed")

// scram runs the exchange on a session; errAuth means a wrong password.
func (ss *session) scram(k *scramKeys) error {
	ss.be.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256"}})
	if err := ss.be.Flush(); err != nil {
		return err
	}
	ss.be.SetAuthType(pgproto3.AuthTypeSASL)
	msg, err := ss.be.Receive()
	if err != nil {
		return err
	}
	first, ok := msg.(*pgproto3.SASLInitialResponse)
	if !ok || first.AuthMechanism != "SCRAM-SHA-256" {
		return fmt.Errorf("%w: expected SCRAM-SHA-256", errAuth)
	}
	// client-first-message: gs2-header ("n,," or "y,,") then n=user,r=nonce
	gs2, bare, ok := cutGS2(string(first.Data))
	if !ok {
		return fmt.Errorf("%w: bad client-first-message", errAuth)
	}
	clientNonce := attr(bare, "r")
	if clientNonce == "" {
		return fmt.Errorf("%w: no client nonce", errAuth)
	}
	nb := make([]byte, 18)
	rand.Read(nb)
	nonce := clientNonce + base64.StdEncoding.EncodeToString(nb)
	serverFirst := fmt.Sprintf("r=%s,s=%s,i=%d", nonce, base64.StdEncoding.EncodeToString(k.salt), scramIterations)
	ss.be.Send(&pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)})
	if err := ss.be.Flush(); err != nil {
		return err
	}
	ss.be.SetAuthType(pgproto3.AuthTypeSASLContinue)
	msg, err = ss.be.Receive()
	if err != nil {
		return err
	}
	final, ok := msg.(*pgproto3.SASLResponse)
	if !ok {
		return fmt.Errorf("%w: expected a SASL response", errAuth)
	}
	// client-final-message: c=base64(gs2-header),r=nonce,p=proof
	cf := string(final.Data)
	i := strings.LastIndex(cf, ",p=")
	if i < 0 {
		return fmt.Errorf("%w: no proof", errAuth)
	}
	withoutProof := cf[:i]
	proof, err := base64.StdEncoding.DecodeString(cf[i+3:])
	if err != nil || len(proof) != sha256.Size || attr(withoutProof, "r") != nonce ||
		attr(withoutProof, "c") != base64.StdEncoding.EncodeToString([]byte(gs2)) {
		return fmt.Errorf("%w: bad client-final-message", errAuth)
	}
	authMessage := bare + "," + serverFirst + "," + withoutProof
	sig := hmacSHA256(k.storedKey, authMessage)
	clientKey := make([]byte, len(proof))
	for j := range proof {
		clientKey[j] = proof[j] ^ sig[j]
	}
	got := sha256.Sum256(clientKey)
	if subtle.ConstantTimeCompare(got[:], k.storedKey) != 1 {
		return errAuth
	}
	serverSig := hmacSHA256(k.serverKey, authMessage)
	ss.be.Send(&pgproto3.AuthenticationSASLFinal{Data: []byte("v=" + base64.StdEncoding.EncodeToString(serverSig))})
	return nil
}

// cutGS2 splits a client-first-message into its GS2 header (with the
// trailing comma) and the bare message; channel binding ("p=") is refused.
func cutGS2(s string) (gs2, bare string, ok bool) {
	if !strings.HasPrefix(s, "n,") && !strings.HasPrefix(s, "y,") {
		return "", "", false
	}
	j := strings.Index(s[2:], ",")
	if j < 0 {
		return "", "", false
	}
	return s[:2+j+1], s[2+j+1:], true
}

// attr returns the value of key in a comma-separated k=v SCRAM message.
func attr(msg, key string) string {
	for _, part := range strings.Split(msg, ",") {
		if v, ok := strings.CutPrefix(part, key+"="); ok {
			return v
		}
	}
	return ""
}
