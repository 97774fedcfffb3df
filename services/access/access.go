// Package access decides who may do what: the identities that call the hub
// (people, API tokens, Slack users, the local operator), their roles, and
// the need-to-know rule of confidential incidents. Can is a pure function,
// so every rule is tested with tables.
package access

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Role is what an identity may do across incidents. Each role includes the
// ones before it.
type Role int

const (
	// None: authenticated but allowed nothing (an unmapped person).
	None Role = iota
	// Viewer reads incidents that are not confidential.
	Viewer
	// Responder declares incidents and acts on those it may read.
	Responder
	// Security reads and acts on every incident, confidential ones too.
	Security
	// Admin also manages tokens and role mappings.
	Admin
)

var roleNames = []string{"none", "viewer", "responder", "security", "admin"}

func (r Role) String() string {
	if r < None || int(r) >= len(roleNames) {
		return fmt.Sprintf("role(%d)", int(r))
	}
	return roleNames[r]
}

// MarshalText writes the role's name.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a role's name.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	*r = v
	return err
}

// ParseRole reads viewer, responder, security or admin.
func ParseRole(s string) (Role, error) {
	if i := slices.Index(roleNames, strings.ToLower(strings.TrimSpace(s))); i > 0 {
		return Role(i), nil
	}
	return None, fmt.Errorf("role %q must be viewer, responder, security or admin", s)
}

// Kind is what sort of caller an identity is.
type Kind string

const (
	Person Kind = "person" // signed in with OpenID Connect
	Token  Kind = "token"  // an API token
	Slack  Kind = "slack"  // a Slack user, through signed Slack requests
	Local  Kind = "local"  // the operator of a hub without auth, on loopback
)

// ScopeActAs lets a token name the person it acts for (X-Hikeshi-Actor).
const ScopeActAs = "act-as"

// Identity is an authenticated caller.
type Identity struct {
	// ID is stable and unique: "person:alice@example.com", "token:<id>",
	// "slack:U123", "local:alice". Events record it as their actor.
	ID   string `json:"id"`
	Name string `json:"name"` // display name
	Kind Kind   `json:"kind"`
	Role Role   `json:"role"`
	// Email and SlackID are other names the same caller goes by, matched
	// against an incident's declarer, commander and channel members.
	Email   string   `json:"email,omitempty"`
	SlackID string   `json:"slack_id,omitempty"`
	Scopes  []string `json:"scopes,omitempty"`
}

// Has reports whether the identity holds a scope.
func (id Identity) Has(scope string) bool { return slices.Contains(id.Scopes, scope) }

// Is reports whether who (a declarer, a commander, a channel member, as
// recorded on the incident) names this identity.
func (id Identity) Is(who string) bool {
	who = strings.TrimSpace(who)
	if who == "" {
		return false
	}
	for _, h := range []string{id.ID, id.Email, id.SlackID} {
		if h != "" && strings.EqualFold(h, who) {
			return true
		}
	}
	// A local operator or a person is also known by the bare name after
	// its kind ("alice" for local:alice), which is what the CLI records
	// when someone is named by hand.
	if id.Kind == Local || id.Kind == Person {
		if _, name, ok := strings.Cut(id.ID, ":"); ok && strings.EqualFold(name, who) {
			return true
		}
	}
	return false
}

// Action is what a caller wants to do.
type Action int

const (
	Read    Action = iota // see an incident, its timeline and events
	Act                   // run a command on an existing incident
	Declare               // declare a new incident
	Manage                // tokens, role mappings, the access audit
)

func (a Action) String() string {
	return [...]string{"read", "act", "declare", "manage"}[a]
}

// Incident is what need-to-know depends on.
type Incident struct {
	Confidential bool
	DeclaredBy   string
	Commander    string
	// Members of the incident's private channel, where events record them.
	Members []string
	// The identities DeclaredBy and Commander map to, when recorded (a
	// Slack user mapped by e-mail to person:<email>).
	DeclaredByIdentity, CommanderIdentity string
}

// Insider reports whether id is one of the incident's own people: its
// declarer, its commander or a member of its private channel.
func (inc Incident) Insider(id Identity) bool {
	if id.Is(inc.DeclaredBy) || id.Is(inc.Commander) || id.Is(inc.DeclaredByIdentity) || id.Is(inc.CommanderIdentity) {
		return true
	}
	return slices.ContainsFunc(inc.Members, id.Is)
}

// Can decides whether id may take action on inc (nil for actions on no
// particular incident: Declare, Manage, and Read of lists).
//
// Roles: a viewer reads, a responder also declares and acts, security also
// reads and acts on confidential incidents, an admin also manages access.
// A confidential incident's insiders (declarer, commander, channel members)
// read it whatever their role, and act on it if their role lets them act.
func Can(id Identity, a Action, inc *Incident) bool {
	switch a {
	case Manage:
		return id.Role >= Admin
	case Declare:
		return id.Role >= Responder
	}
	need := Viewer
	if a == Act {
		need = Responder
	}
	if inc == nil || !inc.Confidential {
		return id.Role >= need
	}
	if id.Role >= Security {
		return true
	}
	return inc.Insider(id) && (a == Read || id.Role >= Responder)
}

type ctxKey struct{}

// With returns ctx carrying the caller.
func With(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the caller ctx carries.
func From(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}
