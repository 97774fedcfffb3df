package console_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/oauth2-proxy/mockoidc"
)

// apiToken is the service token of the OIDC hub's other API clients.
const apiToken = "console-api-token"

// oidcHub starts a whole hub whose people sign in with a real OpenID
// Connect provider running in the test (mockoidc: signed ID tokens, its
// keys served as a JWKS, code flow with PKCE). Groups map to roles: csirt
// is security, sre responder, staff viewer.
func oidcHub(t *testing.T) (base string, provider *mockoidc.MockOIDC) {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	t.Setenv("CONSOLE_OIDC_SECRET", m.ClientSecret)
	f, err := config.Parse("hikeshi.yaml", fmt.Appendf(nil, `
auth:
  oidc:
    issuer: %s
    client_id: %s
    client_secret_env: CONSOLE_OIDC_SECRET
    allowed_domains: [example.com]
    scopes: [email, profile, groups]
    roles: {csirt: security, sre: responder, staff: viewer}
    session_ttl: 1h
`, m.Issuer(), m.ClientID))
	if err != nil {
		t.Fatal(err)
	}
	// The provider sends the browser back to the public URL, so the hub
	// listens where that says: a loopback port free a moment ago.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	base = startHub(t, hub.Config{File: f, Token: apiToken, Listen: addr, PublicURL: "http://" + addr})
	return base, m
}

func person(name string, groups ...string) *mockoidc.MockUser {
	return &mockoidc.MockUser{Subject: "sub-" + name, Email: name + "@example.com", EmailVerified: true,
		PreferredUsername: name, Groups: groups}
}

// signIn opens path in a browser not signed in: the console sends it to
// /auth/login, the provider signs who in, /auth/callback starts the
// session and the browser ends on the page it asked for.
func signIn(t *testing.T, ctx context.Context, m *mockoidc.MockOIDC, base, path string, who *mockoidc.MockUser) {
	t.Helper()
	m.QueueUser(who)
	do(t, ctx, "sign in as "+who.PreferredUsername, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("header.top .who")))
	if loc := run(t, ctx, "location", chromedp.Location()); loc != base+path {
		t.Fatalf("after signing in, %s is at %s, want the page asked for, %s", who.PreferredUsername, loc, base+path)
	}
	if got := run(t, ctx, "who", chromedp.Text(chromedp.CSS("header.top .who"))); !strings.Contains(got, who.PreferredUsername) {
		t.Fatalf("the header says %q, want %s signed in", got, who.PreferredUsername)
	}
}

// otherBrowser is a fresh browser context (its own cookies) in the
// browser of ctx: another person at another computer.
func otherBrowser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	other, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	return other
}

// pageText is the visible text of the page.
func pageText(t *testing.T, ctx context.Context) string {
	return run(t, ctx, "read the page", chromedp.Evaluate[string](`document.body.innerText`))
}

// TestBrowserSignedInPeople: a responder signs in through the provider,
// declares from the form, finds the incident in the list and changes its
// status, all recorded as them. A viewer, signed in in another browser,
// is refused a confidential incident (not found, not listed) and sees no
// forms on an ordinary one; a responder outside the confidential incident
// cannot see it, the security role can. Signing out ends the session: the
// next page goes through sign-in again.
func TestBrowserSignedInPeople(t *testing.T) {
	base, m := oidcHub(t)
	alice := newTab(t, 1280, 900)
	signIn(t, alice, m, base, "/declare", person("alice", "sre"))

	do(t, alice, "fill the declare form",
		chromedp.SendKeys(chromedp.ID("title"), "Checkout DB outage"),
		chromedp.SendKeys(chromedp.ID("service"), "payments"),
		chromedp.Click(chromedp.ID("sev-SEV2")),
	)
	do(t, alice, "declare", chromedp.Click(chromedp.CSS(`form.declare button[type=submit]`)), chromedp.WaitVisible(chromedp.ID("incident-head")))
	if got := run(t, alice, "declarer", chromedp.Text(chromedp.ID("incident-head"))); !strings.Contains(got, "person:alice@example.com") {
		t.Fatalf("the incident is not recorded as declared by alice:\n%s", got)
	}
	do(t, alice, "open the list", chromedp.Navigate(base+"/incidents"), chromedp.WaitVisible(chromedp.ID("q")))
	waitFor(t, alice, "the incident in the list", `[...document.querySelectorAll("table.list a")].some(a => a.textContent.includes("Checkout DB outage"))`)
	do(t, alice, "open it", chromedp.Click(chromedp.CSS(`table.list td a[href="/incidents/INC-1"]`)), chromedp.WaitVisible(chromedp.ID("status")))
	do(t, alice, "change the status",
		chromedp.SetValue(chromedp.ID("status"), "identified"),
		chromedp.SendKeys(chromedp.ID("message"), "a migration locked the orders table"),
		chromedp.Click(chromedp.CSS(`form[action$="/status"] button[type=submit]`)),
	)
	waitFor(t, alice, "the status change on the timeline", `document.getElementById("entries").textContent.includes("investigating → identified")`)
	waitFor(t, alice, "alice as its actor", `[...document.querySelectorAll("#entries .actor")].some(a => a.textContent.includes("alice"))`)

	// A confidential incident, declared by the security team through the API.
	api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": "Leaked payroll export", "service": "hr", "severity": "SEV1", "confidential": true},
		"Authorization", "Bearer "+apiToken)

	victor := otherBrowser(t, alice)
	signIn(t, victor, m, base, "/incidents", person("victor", "staff"))
	waitFor(t, victor, "the ordinary incident in the viewer's list", `document.querySelector("table.list").textContent.includes("Checkout DB outage")`)
	if text := pageText(t, victor); strings.Contains(text, "payroll") || strings.Contains(text, "INC-2") {
		t.Fatalf("the viewer's list shows the confidential incident:\n%s", text)
	}
	do(t, victor, "open the confidential incident", chromedp.Navigate(base+"/incidents/INC-2"), chromedp.WaitVisible(chromedp.CSS("main")))
	if text := pageText(t, victor); !strings.Contains(text, `No incident "INC-2"`) || strings.Contains(text, "payroll") {
		t.Fatalf("the viewer opening the confidential incident sees:\n%s", text)
	}
	do(t, victor, "open the ordinary incident", chromedp.Navigate(base+"/incidents/INC-1"), chromedp.WaitVisible(chromedp.ID("entries")))
	if n := run(t, victor, "count forms", chromedp.Evaluate[int](`document.querySelectorAll("main form[method=post]").length`)); n != 0 {
		t.Fatalf("the viewer sees %d command forms on an incident (the time slider, which only reads, may stay)", n)
	}
	if n := run(t, victor, "count links to declare", chromedp.Evaluate[int](`document.querySelectorAll('a[href^="/declare"]').length`)); n != 0 {
		t.Fatalf("the viewer, who may not declare, is offered %d links to the declare form", n)
	}

	rita := otherBrowser(t, alice)
	signIn(t, rita, m, base, "/incidents", person("rita", "sre"))
	if text := pageText(t, rita); strings.Contains(text, "payroll") {
		t.Fatalf("a responder outside the confidential incident has it listed:\n%s", text)
	}
	do(t, rita, "open the confidential incident", chromedp.Navigate(base+"/incidents/INC-2"), chromedp.WaitVisible(chromedp.CSS("main")))
	if text := pageText(t, rita); !strings.Contains(text, `No incident "INC-2"`) {
		t.Fatalf("a responder outside the confidential incident opens it:\n%s", text)
	}

	sam := otherBrowser(t, alice)
	signIn(t, sam, m, base, "/incidents", person("sam", "csirt"))
	waitFor(t, sam, "the confidential incident in security's list", `document.querySelector("table.list").textContent.includes("Leaked payroll export")`)
	do(t, sam, "open the confidential incident", chromedp.Navigate(base+"/incidents/INC-2"), chromedp.WaitVisible(chromedp.ID("status")))

	// Signing out ends alice's session and says so; the next page goes
	// through sign-in, where the provider now signs in someone else.
	do(t, alice, "sign out", chromedp.Click(chromedp.CSS(`form.signout button[type=submit]`)), chromedp.WaitVisible(chromedp.ID("signed-out")))
	if n := run(t, alice, "count the incident's forms", chromedp.Evaluate[int](`document.querySelectorAll("main form, form.signout").length`)); n != 0 {
		t.Fatalf("the signed-out page shows %d forms", n)
	}
	m.QueueUser(person("victor", "staff"))
	do(t, alice, "open a page", chromedp.Navigate(base+"/incidents/INC-1"), chromedp.WaitVisible(chromedp.ID("entries")))
	if got := run(t, alice, "who", chromedp.Text(chromedp.CSS("header.top .who"))); !strings.Contains(got, "victor") {
		t.Fatalf("after alice signed out, the next page shows %q, not the person signed in anew", got)
	}
	if n := run(t, alice, "count forms", chromedp.Evaluate[int](`document.querySelectorAll("main form[method=post]").length`)); n != 0 {
		t.Fatalf("after alice signed out, her browser still acts with %d forms", n)
	}
}

// TestBrowserLiveTimelineEndsWithTheSession: when a person's session ends
// (signed out in another tab) while an incident page follows its timeline,
// the stream sends nothing more and stops, saying so, instead of retrying
// through sign-in in the background (where each retry would restart the
// sign-in the person may be going through).
func TestBrowserLiveTimelineEndsWithTheSession(t *testing.T) {
	base, m := oidcHub(t)
	api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": "Queue backlog", "service": "orders", "severity": "SEV3"},
		"Authorization", "Bearer "+apiToken)
	alice := newTab(t, 1280, 900)
	signIn(t, alice, m, base, "/incidents/INC-1", person("alice", "sre"))
	waitFor(t, alice, "the live timeline to connect", `document.getElementById("live-state").textContent.startsWith("Live")`)

	// Signed out elsewhere: the session ends on the server.
	status := run(t, alice, "sign out from another tab", chromedp.Evaluate[int](`fetch("/auth/logout", {method: "POST", redirect: "manual",
		body: new URLSearchParams({csrf: document.querySelector('meta[name="csrf-token"]').content})}).then(r => r.type === "opaqueredirect" ? 303 : r.status)`,
		chromedp.EvalAwaitPromise))
	if status != 303 {
		t.Fatalf("logout answered %d", status)
	}
	api(t, base, "POST", "/api/v1/incidents/INC-1/notes", map[string]string{"text": "after the session ended"}, "Authorization", "Bearer "+apiToken)
	waitFor(t, alice, "the live timeline to stop", `document.getElementById("live-state").textContent.startsWith("Live updates stopped")`)
	if text := run(t, alice, "read the timeline", chromedp.Text(chromedp.ID("entries"))); strings.Contains(text, "after the session ended") {
		t.Fatalf("the live timeline kept streaming after the session ended:\n%s", text)
	}
}
