package access_test

import (
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/access"
)

func TestCan(t *testing.T) {
	viewer := access.Identity{ID: "person:vic@example.com", Email: "vic@example.com", Kind: access.Person, Role: access.Viewer}
	responder := access.Identity{ID: "token:r1", Kind: access.Token, Role: access.Responder}
	security := access.Identity{ID: "person:sec@example.com", Kind: access.Person, Role: access.Security}
	admin := access.Identity{ID: "local:root", Kind: access.Local, Role: access.Admin}
	unmapped := access.Identity{ID: "person:new@example.com", Kind: access.Person, Role: access.None}
	declarer := access.Identity{ID: "slack:U01DEC", SlackID: "U01DEC", Kind: access.Slack, Role: access.Responder}
	commander := access.Identity{ID: "person:cmd@example.com", Email: "cmd@example.com", Kind: access.Person, Role: access.Responder}
	viewerCommander := access.Identity{ID: "person:vc@example.com", Email: "vc@example.com", Kind: access.Person, Role: access.Viewer}
	member := access.Identity{ID: "local:mia", Kind: access.Local, Role: access.Responder}

	open := &access.Incident{DeclaredBy: "U01DEC", Commander: "cmd@example.com"}
	secret := &access.Incident{Confidential: true, DeclaredBy: "U01DEC", Commander: "cmd@example.com", Members: []string{"mia"}}
	secretVC := &access.Incident{Confidential: true, DeclaredBy: "someone", Commander: "person:vc@example.com"}
	fromSlack := &access.Incident{Confidential: true, DeclaredBy: "U01ALICE", DeclaredByIdentity: "person:vic@example.com",
		Commander: "U01BOB", CommanderIdentity: "person:cmd@example.com"}

	for _, c := range []struct {
		name string
		id   access.Identity
		a    access.Action
		inc  *access.Incident
		want bool
	}{
		{"viewer reads a list", viewer, access.Read, nil, true},
		{"viewer reads an open incident", viewer, access.Read, open, true},
		{"viewer may not act", viewer, access.Act, open, false},
		{"viewer may not declare", viewer, access.Declare, nil, false},
		{"viewer outside a confidential incident", viewer, access.Read, secret, false},
		{"unmapped person reads nothing", unmapped, access.Read, open, false},
		{"unmapped person lists nothing", unmapped, access.Read, nil, false},
		{"responder acts on an open incident", responder, access.Act, open, true},
		{"responder declares", responder, access.Declare, nil, true},
		{"responder outside a confidential incident may not read", responder, access.Read, secret, false},
		{"responder outside a confidential incident may not act", responder, access.Act, secret, false},
		{"responder may not manage", responder, access.Manage, nil, false},
		{"declarer (by Slack id) reads", declarer, access.Read, secret, true},
		{"declarer acts", declarer, access.Act, secret, true},
		{"commander (by e-mail) reads", commander, access.Read, secret, true},
		{"commander acts", commander, access.Act, secret, true},
		{"channel member (by name) reads", member, access.Read, secret, true},
		{"channel member acts", member, access.Act, secret, true},
		{"viewer commander reads", viewerCommander, access.Read, secretVC, true},
		{"viewer commander may not act", viewerCommander, access.Act, secretVC, false},
		{"Slack declarer signed in (mapped by e-mail) reads", viewer, access.Read, fromSlack, true},
		{"Slack commander signed in (mapped by e-mail) acts", commander, access.Act, fromSlack, true},
		{"someone else signed in reads nothing of a Slack incident", viewerCommander, access.Read, fromSlack, false},
		{"security reads any confidential incident", security, access.Read, secret, true},
		{"security acts on it", security, access.Act, secret, true},
		{"security may not manage", security, access.Manage, nil, false},
		{"admin manages", admin, access.Manage, nil, true},
		{"admin reads a confidential incident", admin, access.Read, secret, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := access.Can(c.id, c.a, c.inc); got != c.want {
				t.Errorf("Can(%s %s, %s) = %v, want %v", c.id.Role, c.id.ID, c.a, got, c.want)
			}
		})
	}
}

func TestIsDoesNotMatchDisplayNames(t *testing.T) {
	// A display name is chosen by whoever holds the identity; only stable
	// handles make someone an insider.
	tok := access.Identity{ID: "token:t1", Name: "alice", Kind: access.Token, Role: access.Responder}
	if tok.Is("alice") {
		t.Fatal("a token named alice passes for alice")
	}
	if (access.Identity{ID: "local:alice", Kind: access.Local}).Is("") {
		t.Fatal("the empty name matches")
	}
}

func TestParseRole(t *testing.T) {
	for _, s := range []string{"viewer", "responder", "security", "Admin "} {
		if _, err := access.ParseRole(s); err != nil {
			t.Errorf("ParseRole(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "none", "root"} {
		if _, err := access.ParseRole(s); err == nil {
			t.Errorf("ParseRole(%q) accepted", s)
		}
	}
}

func TestParseExpiry(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "12h": 12 * time.Hour, "never": 0, "": 0} {
		if got, err := access.ParseExpiry(in); err != nil || got != want {
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0d", "-1d", "soon", "-5m", "1.5d"} {
		if _, err := access.ParseExpiry(in); err == nil {
			t.Errorf("ParseExpiry(%q) accepted", in)
		}
	}
}

func TestRoleFor(t *testing.T) {
	m := map[string]string{"*": "viewer", "sre": "responder", "csirt": "security", "Boss@Example.com": "admin"}
	for _, c := range []struct {
		email  string
		groups []string
		want   access.Role
	}{
		{"a@example.com", nil, access.Viewer},
		{"a@example.com", []string{"sre"}, access.Responder},
		{"a@example.com", []string{"sre", "csirt"}, access.Security},
		{"boss@example.com", []string{"sre"}, access.Admin},
	} {
		if got := access.RoleFor(m, c.email, c.groups); got != c.want {
			t.Errorf("RoleFor(%s, %v) = %s, want %s", c.email, c.groups, got, c.want)
		}
	}
	if got := access.RoleFor(map[string]string{"sre": "responder"}, "x@example.com", []string{"web"}); got != access.None {
		t.Errorf("unmapped person got %s", got)
	}
}
