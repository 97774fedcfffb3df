package console_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hikeshi/hikeshi/services/hub"
)

// These tests drive a real browser, Debian's chromium, headless. They fail
// (not skip) without it: the console is only tested where it runs.

// chromiumPath is where Debian's chromium package puts the browser;
// HIKESHI_CHROMIUM names another.
func chromiumPath(t testing.TB) string {
	t.Helper()
	path := os.Getenv("HIKESHI_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the web console's browser tests need Chromium at %s (%v): install Debian's chromium package "+
			"(apt-get update && apt-get install -y chromium), or set HIKESHI_CHROMIUM to a Chromium binary", path, err)
	}
	return path
}

// newTab starts a headless Chromium with a window of width × height and
// returns a tab; everything ends with the test.
func newTab(t testing.TB, width, height int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.WindowSize(width, height),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.Flag("disable-gpu", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// do runs browser steps, failing the test with what it was doing.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it holds (at most 10s).
func waitFor(t *testing.T, ctx context.Context, what, predicate string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, body)
	}
}

// screenshot saves the page under docs/screenshots when
// HIKESHI_SCREENSHOTS=1 (the images the README shows).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("HIKESHI_SCREENSHOTS") != "1" {
		return
	}
	png := run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserIncidentWalkthrough: a person declares from the form, finds
// the incident in the list, changes its status, watches a note another
// client adds through the API appear without a reload, and sees the
// validation message of a bad input next to its field.
func TestBrowserIncidentWalkthrough(t *testing.T) {
	base := startHub(t, hub.Config{})
	ctx := newTab(t, 1280, 900)

	// Declare from the form.
	do(t, ctx, "open the declare form", chromedp.Navigate(base+"/declare"), chromedp.WaitVisible(chromedp.ID("title")))
	do(t, ctx, "fill the declare form",
		chromedp.SendKeys(chromedp.ID("title"), "Checkout DB outage"),
		chromedp.SendKeys(chromedp.ID("service"), "payments"),
		chromedp.Click(chromedp.ID("sev-SEV2")),
		chromedp.SendKeys(chromedp.ID("summary"), "writes to the orders table fail"),
	)
	screenshot(t, ctx, "declare")
	do(t, ctx, "declare", chromedp.Click(chromedp.CSS(`form.declare button[type=submit]`)), chromedp.WaitVisible(chromedp.ID("incident-head")))
	if loc := run(t, ctx, "location", chromedp.Location()); !strings.HasSuffix(loc, "/incidents/INC-1") {
		t.Fatalf("after declaring, the browser is at %s, want the incident page /incidents/INC-1", loc)
	}

	// Find it in the list, by searching its title.
	do(t, ctx, "open the list", chromedp.Navigate(base+"/incidents"), chromedp.WaitVisible(chromedp.ID("q")))
	do(t, ctx, "search", chromedp.SendKeys(chromedp.ID("q"), "checkout"), chromedp.Submit(chromedp.ID("q")),
		// The page the search answers with shows the query it ran.
		chromedp.WaitVisible(chromedp.CSS(`input#q[value="checkout"]`)))
	waitFor(t, ctx, "the incident in the list", `[...document.querySelectorAll("table.list a")].some(a => a.textContent.includes("Checkout DB outage"))`)
	screenshot(t, ctx, "incidents")
	do(t, ctx, "open the incident from the list", chromedp.Click(chromedp.CSS(`table.list td a[href="/incidents/INC-1"]`)), chromedp.WaitVisible(chromedp.ID("entries")))
	waitFor(t, ctx, "the live timeline to connect", `document.getElementById("live-state").textContent.startsWith("Live")`)
	// Marks this document: a reload would lose it.
	do(t, ctx, "mark the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))

	// Change its status.
	do(t, ctx, "change the status",
		chromedp.SetValue(chromedp.ID("status"), "identified"),
		chromedp.SendKeys(chromedp.ID("message"), "a migration locked the orders table"),
		chromedp.Click(chromedp.CSS(`form[action$="/status"] button[type=submit]`)),
	)
	waitFor(t, ctx, "the new status in the header", `document.getElementById("incident-status").textContent.includes("identified")`)
	waitFor(t, ctx, "the status change on the timeline", `document.getElementById("entries").textContent.includes("investigating → identified")`)

	// Another client adds a note through the API: it appears live.
	api(t, base, "POST", "/api/v1/incidents/INC-1/notes", map[string]string{"text": "rolling back migration 2026_11_21"}, "X-Hikeshi-Actor", "bob")
	waitFor(t, ctx, "the API's note on the live timeline", `document.getElementById("entries").textContent.includes("rolling back migration 2026_11_21")`)
	if !run(t, ctx, "check the page was not reloaded", chromedp.Evaluate[bool](`window.notReloaded === true`)) {
		t.Fatal("the note appeared by reloading the page, not live")
	}

	// A bad input: the command's message shows next to the field, and the
	// page stays as it was.
	do(t, ctx, "assign nobody as commander", chromedp.Click(chromedp.CSS(`form[action$="/commander"] button[type=submit]`)))
	waitFor(t, ctx, "the validation message next to the commander field", `document.getElementById("err-user").textContent === "Commander is required"`)
	if !run(t, ctx, "check the page was not reloaded", chromedp.Evaluate[bool](`window.notReloaded === true`)) {
		t.Fatal("the refusal reloaded the page")
	}
	do(t, ctx, "assign a commander", chromedp.SendKeys(chromedp.ID("user"), "alice"), chromedp.Click(chromedp.CSS(`form[action$="/commander"] button[type=submit]`)))
	waitFor(t, ctx, "the commander on the timeline", `document.getElementById("entries").textContent.includes("Commander: alice")`)
	waitFor(t, ctx, "the commander's error cleared", `document.getElementById("err-user").textContent === ""`)
	screenshot(t, ctx, "incident")

	do(t, ctx, "open the insights", chromedp.Navigate(base+"/insights?metric=commander"), chromedp.WaitVisible(chromedp.CSS("figure.chart")))
	screenshot(t, ctx, "insights")

	// The same page on a phone.
	do(t, ctx, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(base+"/incidents/INC-1"), chromedp.WaitVisible(chromedp.ID("entries")))
	screenshot(t, ctx, "incident-phone")
}

// TestBrowserVersionConflictKeepsInput: someone else changes the severity
// while a person fills the severity form; the person's change is refused
// with an explanation, and what they typed is still there.
func TestBrowserVersionConflictKeepsInput(t *testing.T) {
	base := startHub(t, hub.Config{})
	api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": "Queue backlog", "service": "orders", "severity": "SEV3"})
	ctx := newTab(t, 1280, 900)
	do(t, ctx, "open the incident", chromedp.Navigate(base+"/incidents/INC-1"), chromedp.WaitVisible(chromedp.ID("severity")))
	do(t, ctx, "fill the severity form",
		chromedp.SetValue(chromedp.ID("severity"), "SEV1"),
		chromedp.SendKeys(chromedp.ID("reason"), "every region is affected"))
	// A note changes nothing the severity form is about: no conflict.
	api(t, base, "POST", "/api/v1/incidents/INC-1/notes", map[string]string{"text": "looking"}, "X-Hikeshi-Actor", "bob")
	api(t, base, "POST", "/api/v1/incidents/INC-1/severity", map[string]string{"severity": "SEV2"}, "X-Hikeshi-Actor", "bob")
	do(t, ctx, "send the severity form", chromedp.Click(chromedp.CSS(`form[action$="/severity"] button[type=submit]`)))
	waitFor(t, ctx, "the conflict explained", `document.querySelector('form[action$="/severity"] .form-error').textContent.includes("Someone changed INC-1 since you loaded it")`)
	if reason := run(t, ctx, "read the reason", chromedp.Value(chromedp.ID("reason"))); reason != "every region is affected" {
		t.Fatalf("the reason typed was lost: %q", reason)
	}
	// Sent again, against the incident as it is now, it goes through.
	do(t, ctx, "send again", chromedp.Click(chromedp.CSS(`form[action$="/severity"] button[type=submit]`)))
	waitFor(t, ctx, "the severity change on the timeline", `document.getElementById("entries").textContent.includes("SEV2 → SEV1")`)
}

// TestBrowserAcceptTriageFromTheDashboard: a person accepts an escalation
// from the dashboard's triage queue: the declare form opens filled from
// it, and once declared the item leaves the queue.
func TestBrowserAcceptTriageFromTheDashboard(t *testing.T) {
	base, h := startHubBus(t, hub.Config{})
	api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": "Checkout latency", "service": "payments", "severity": "SEV3"})
	leak := openTriage(t, h, "T-200", "Invoices of other customers shown")
	openTriage(t, h, "T-201", "Phishing mail reported by finance")
	ctx := newTab(t, 1280, 900)
	do(t, ctx, "open the dashboard", chromedp.Navigate(base+"/dashboard"), chromedp.WaitVisible(chromedp.ID("triage-"+leak)))
	screenshot(t, ctx, "dashboard")
	do(t, ctx, "accept", chromedp.Click(chromedp.CSS(`#triage-`+leak+` a.button`)), chromedp.WaitVisible(chromedp.ID("title")))
	if title := run(t, ctx, "read the title", chromedp.Value(chromedp.ID("title"))); title != "Invoices of other customers shown" {
		t.Fatalf("the declare form starts with the title %q, not the escalation's", title)
	}
	do(t, ctx, "declare", chromedp.Click(chromedp.ID("sev-SEV1")), chromedp.Click(chromedp.ID("confidential")),
		chromedp.Click(chromedp.CSS(`form.declare button[type=submit]`)), chromedp.WaitVisible(chromedp.ID("incident-head")))
	waitFor(t, ctx, "the acceptance on the timeline", `document.getElementById("entries").textContent.includes("Declared from an escalation in the triage queue")`)
	do(t, ctx, "back to the dashboard", chromedp.Navigate(base+"/dashboard"), chromedp.WaitVisible(chromedp.ID("triage")))
	if left := run(t, ctx, "count the queue", chromedp.Evaluate[int](`document.querySelectorAll(".triage-item").length`)); left != 1 {
		t.Fatalf("%d items in the queue after accepting one of two", left)
	}
}
