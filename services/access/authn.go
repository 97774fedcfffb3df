package access

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os/user"
	"strings"

	"github.com/hikeshi/hikeshi/services/httpjson"
)

// ErrUnauthenticated: the request carries no credentials this hub accepts.
// Its message never repeats what the caller sent.
var ErrUnauthenticated = errors.New("missing or wrong bearer token (send Authorization: Bearer <token>), and no signed-in session")

// ServiceToken is the identity of the token configured with --token
// (HIKESHI_TOKEN): an admin that may act for others, as every holder of
// the one shared token could before identities existed.
var ServiceToken = Identity{ID: "token:service", Name: "service token", Kind: Token, Role: Admin, Scopes: []string{ScopeActAs}}

// LocalOperator is the one operator of a hub without configured auth,
// listening on loopback: the OS user running the hub (or "local").
func LocalOperator() Identity {
	name := "local"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return Identity{ID: "local:" + name, Name: name, Kind: Local, Role: Admin, Scopes: []string{ScopeActAs}}
}

// Sessions authenticates a browser by its session cookie.
type Sessions interface {
	// Session returns the signed-in person, false when the request has no
	// valid session.
	Session(r *http.Request) (Identity, bool)
}

// Authenticator finds out who sent a request.
type Authenticator struct {
	// Legacy is the token configured with --token, if any.
	Legacy string
	// Tokens checks API tokens; nil: none are accepted but Legacy.
	Tokens *Tokens
	// Sessions checks browser sessions; nil: no sign-in.
	Sessions Sessions
	// Local, when set, is who a request without credentials from a
	// loopback address is: a hub without configured auth.
	Local *Identity
}

// Authenticate returns the caller, or ErrUnauthenticated (or a bus error
// when tokens could not be checked).
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		return a.bearer(r.Context(), h)
	}
	if a.Sessions != nil {
		if id, ok := a.Sessions.Session(r); ok {
			return id, nil
		}
	}
	if a.Local != nil && loopbackPeer(r.RemoteAddr) {
		return *a.Local, nil
	}
	return Identity{}, ErrUnauthenticated
}

func (a *Authenticator) bearer(ctx context.Context, header string) (Identity, error) {
	secret, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || secret == "" {
		return Identity{}, ErrUnauthenticated
	}
	if a.Legacy != "" && httpjson.SecretEqual(secret, a.Legacy) {
		return ServiceToken, nil
	}
	if a.Tokens == nil {
		return Identity{}, ErrUnauthenticated
	}
	id, err := a.Tokens.Check(ctx, secret)
	if errors.Is(err, errBadToken) {
		return Identity{}, ErrUnauthenticated
	}
	return id, err
}

func loopbackPeer(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ForToken is the authenticator of a hub configured with only a bearer
// token (or nothing): the service token, else the local operator.
func ForToken(token string) *Authenticator {
	a := &Authenticator{Legacy: token}
	if token == "" {
		local := LocalOperator()
		a.Local = &local
	}
	return a
}

// Guard is who may call the hub, and how confidential incidents are listed
// to those outside them.
type Guard struct {
	Auth          *Authenticator
	ShowCodenames bool
}
