package notify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/httpx"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/notify"
	"github.com/hikeshi/hikeshi/services/projection"
)

const hookSecret = "whsec-test-0123456789"

// env is a hub with the notify module, a mailpit and a webhook receiver.
type env struct {
	h    *integrationtest.Hub
	mp   *mailpit
	hook *receiver
	cfg  notify.Config
	sec  notify.Secrets
}

// setup starts everything; section is the notify: section after the smtp
// block, where RECEIVER stands for the receiver's URL.
func setup(t *testing.T, section string, mailpitFlags ...string) *env {
	t.Helper()
	t.Setenv("HIKESHI_TEST_HOOK_SECRET", hookSecret)
	mp := startMailpit(t, mailpitFlags...)
	hook := newReceiver(t, hookSecret)
	yaml := fmt.Sprintf("notify:\n  smtp:\n    host: %s\n    port: %d\n    from: \"Hikeshi <incidents@acme.test>\"\n    tls: none\n%s",
		mp.host, mp.smtp, strings.ReplaceAll(section, "RECEIVER", hook.srv.URL))
	h := integrationtest.New(t, yaml)
	cfg, sec, err := notify.Load(h.Env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &env{h: h, mp: mp, hook: hook, cfg: cfg, sec: sec}
}

func (e *env) projector(t testing.TB) *notify.Projector {
	t.Helper()
	p, err := notify.New(e.cfg, e.sec, e.h.Env, notify.Options{Transport: &httpx.Transport{Backoff: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// facts returns the notifications recorded on incident id.
func (e *env) facts(t *testing.T, id string) []events.NotifySent {
	t.Helper()
	var out []events.NotifySent
	for _, s := range e.h.Events(t, id) {
		if s.Type != events.TypeNotifySent {
			continue
		}
		d, err := s.Decode()
		if err != nil {
			t.Fatal(err)
		}
		if s.Actor != notify.Name {
			t.Errorf("fact by %q, want %q", s.Actor, notify.Name)
		}
		out = append(out, *d.(*events.NotifySent))
	}
	return out
}

const staffAndCustomers = `  recipients:
    oncall: {email: oncall@acme.test}
    customers: {email: status-subscribers@acme.test}
    board: {webhook: RECEIVER/hikeshi, secret_env: HIKESHI_TEST_HOOK_SECRET}
  rules:
    - name: staff
      severity: SEV2
      on: [declared, escalated, status_updated, closed]
      statuses: [resolved]
      to: [oncall, board]
    - name: customers
      services: [payments]
      on: [declared, closed]
      template: external
      to: [customers]
`

// TestContract runs the contract every projector keeps on the notify
// projector: every rule tells every recipient once, however often it is
// replayed or restarted, with or without its ledger (the facts on the
// incident say what was sent); a refusal is recorded, not dead-lettered.
func TestContract(t *testing.T) {
	integrationtest.TestProjector(t, integrationtest.ProjectorCase{
		Lives: []integrationtest.Life{
			integrationtest.LifeOf(integrationtest.Ordinary),
			integrationtest.LifeOf(integrationtest.Confidential),
		},
		Features: integrationtest.Features{RecordsRefusals: "a mailbox or webhook that refuses for good is recorded " +
			"as a notify.sent fact with outcome refused, and the event's other recipients are still told (TestRefusalsAreRecordedNotRetried)"},
		World: func(t *testing.T) *integrationtest.World {
			section := strings.Replace(staffAndCustomers, "  rules:\n", "    csirt: {email: csirt@acme.test, security: true}\n  rules:\n", 1)
			e := setup(t, section+"    - name: security\n      on: [declared, closed]\n      to: [csirt]\n")
			return &integrationtest.World{
				Hub:       e.h,
				Projector: func(t testing.TB) projection.Projector { return e.projector(t).Projector() },
				Effects:   func(t testing.TB) []string { return e.effects(t) },
				Refuse:    func(testing.TB) { e.hook.script(answer{status: http.StatusNotFound}) },
			}
		},
	})
}

// effects is what the mail server and the webhook receiver got,
// comparable across hubs.
func (e *env) effects(t testing.TB) []string {
	var out []string
	for _, m := range e.mp.messages(t) {
		var to []string
		for _, a := range m.To {
			to = append(to, a.Address)
		}
		out = append(out, e.h.Mask(fmt.Sprintf("mail to %v: %s\n%s", to, m.Subject, m.Text)))
	}
	payloads, _, _ := e.hook.deliveries()
	for _, p := range payloads {
		out = append(out, e.h.Mask(fmt.Sprintf("webhook %s %s about %s %q %s", p.Rule, p.Trigger, p.Incident.CaseNumber, p.Incident.Title, p.Incident.Severity)))
	}
	return out
}

// TestWhatEachRecipientIsTold follows an incident with a webhook receiver
// that fails and rate limits on the way: every rule told every recipient
// once, in mails with text and HTML parts, and webhooks the receiver can
// verify.
func TestWhatEachRecipientIsTold(t *testing.T) {
	e := setup(t, staffAndCustomers)
	e.hook.script(answer{status: 500}, answer{status: 429, retryAfter: "1"}, answer{status: 503})
	st := e.h.Declare(t, incident.Declare{Title: "Card payments failing", Service: "payments", Severity: "SEV3",
		Summary: "12% of authorisations fail"})
	for _, c := range []incident.Command{
		incident.ChangeSeverity{Severity: "SEV1", Reason: "every region now"},
		incident.UpdateStatus{Status: "identified", Message: "expired gateway certificate"},
		incident.UpdateStatus{Status: "resolved", Message: "certificate renewed"},
		incident.Close{Resolution: "renewed the certificate", LessonsLearned: "alert on expiry"},
	} {
		e.h.Do(t, st.ID, c)
	}
	e.h.Replay(t, st.ID, e.projector(t).Handle)

	facts := e.facts(t, st.ID)
	if len(facts) != 8 {
		t.Fatalf("%d notifications recorded, want 8: %+v", len(facts), facts)
	}
	type sent struct{ rule, channel, recipient, trigger string }
	var got []sent
	for _, f := range facts {
		if f.Outcome != events.NotifyAccepted || f.MessageID == "" || f.CauseID == "" || f.Detail == "" {
			t.Errorf("fact %+v", f)
		}
		got = append(got, sent{f.Rule, f.Channel, f.Recipient, f.Trigger})
	}
	wantSent := []sent{
		{"customers", "email", "status-subscribers@acme.test", "declared"},
		{"staff", "email", "oncall@acme.test", "escalated"},
		{"staff", "webhook", "board", "escalated"},
		{"staff", "email", "oncall@acme.test", "status_updated"},
		{"staff", "webhook", "board", "status_updated"},
		{"staff", "email", "oncall@acme.test", "closed"},
		{"staff", "webhook", "board", "closed"},
		{"customers", "email", "status-subscribers@acme.test", "closed"},
	}
	if !slices.Equal(got, wantSent) {
		t.Errorf("notifications\n%v\nwant\n%v", got, wantSent)
	}

	msgs := e.mp.messages(t)
	if len(msgs) != 5 {
		t.Fatalf("mailpit received %d mails, want 5", len(msgs))
	}
	subjects := []string{
		"Card payments failing: We are investigating an incident",
		"[SEV1] INC-1 Card payments failing: escalated from SEV3 to SEV1",
		"[SEV1] INC-1 Card payments failing: status identified → resolved",
		"[SEV1] INC-1 Card payments failing: closed",
		"Card payments failing: This incident is closed",
	}
	var gotSubjects []string
	for _, m := range msgs {
		if !slices.Contains(gotSubjects, m.Subject) {
			gotSubjects = append(gotSubjects, m.Subject)
		}
		if m.From.Address != "incidents@acme.test" || len(m.To) != 1 {
			t.Errorf("from %v to %v", m.From, m.To)
		}
		if !strings.Contains(m.Raw, "multipart/alternative") || strings.TrimSpace(m.Text) == "" || !strings.Contains(m.HTML, "<h2>") {
			t.Errorf("%q: want text and HTML parts; text %q html %q", m.Subject, m.Text, m.HTML)
		}
		if !strings.Contains(m.Text, "Card payments failing") {
			t.Errorf("%q: text lacks the title:\n%s", m.Subject, m.Text)
		}
	}
	slices.Sort(subjects)
	slices.Sort(gotSubjects)
	if !slices.Equal(subjects, gotSubjects) {
		t.Errorf("subjects\n%q\nwant\n%q", gotSubjects, subjects)
	}
	staff := msgs[1]
	if staff.To[0].Address != "oncall@acme.test" {
		t.Fatalf("second mail to %v", staff.To)
	}
	for _, want := range []string{"Severity:  SEV1", "Service:   payments", "12% of authorisations fail", "Reason: every region now",
		"https://hikeshi.example.test/incidents/" + st.ID} {
		if !strings.Contains(staff.Text, want) {
			t.Errorf("internal report lacks %q:\n%s", want, staff.Text)
		}
	}
	if !strings.Contains(staff.HTML, `<a href="https://hikeshi.example.test/incidents/`+st.ID+`">`) {
		t.Errorf("internal HTML lacks the timeline link:\n%s", staff.HTML)
	}
	closing := msgs[4]
	if closing.To[0].Address != "status-subscribers@acme.test" || !strings.Contains(closing.Text, "renewed the certificate") ||
		strings.Contains(closing.Text, "alert on expiry") || strings.Contains(closing.Text, "timeline") {
		t.Errorf("external closing report to %v:\n%s", closing.To, closing.Text)
	}

	payloads, bodies, bad := e.hook.deliveries()
	if n := strings.Count(bodies, `"rule":"staff"`); n != 6 {
		t.Errorf("the receiver saw %d requests, want 6 (3 deliveries, 500, 429 and 503 retried)", n)
	}
	if len(bad) != 0 {
		t.Errorf("webhook verification failures: %v", bad)
	}
	if len(payloads) != 3 {
		t.Fatalf("%d webhook deliveries accepted, want 3", len(payloads))
	}
	ids := map[string]bool{}
	for _, p := range payloads {
		ids[p.ID] = true
		if p.Rule != "staff" || p.Incident.Title != "Card payments failing" || p.Incident.Service != "payments" || p.Incident.CaseNumber != "INC-1" {
			t.Errorf("payload %+v", p)
		}
	}
	if len(ids) != 3 {
		t.Errorf("delivery ids repeat: %v", ids)
	}
	if c := payloads[0].Change; payloads[0].Trigger != "escalated" || c == nil || c.From != "SEV3" || c.To != "SEV1" || c.Message != "every region now" {
		t.Errorf("escalation payload %+v %+v", payloads[0], payloads[0].Change)
	}
	for i, f := range facts {
		if f.Channel != notify.ChannelWebhook {
			continue
		}
		if !ids[f.MessageID] {
			t.Errorf("fact %d names delivery %s, not received", i, f.MessageID)
		}
		if !slices.ContainsFunc(payloads, func(p notify.Payload) bool { return p.ID == f.MessageID && p.EventID == f.CauseID }) {
			t.Errorf("fact %d: no payload %s about event %s", i, f.MessageID, f.CauseID)
		}
	}
}

// TestDrillAndConfidential: a drill reaches drill recipients only; a
// confidential incident reaches security recipients only, by codename, and
// its title, service and free text are in no mail and no webhook body.
func TestDrillAndConfidential(t *testing.T) {
	e := setup(t, `  recipients:
    oncall: {email: oncall@acme.test}
    csirt: {email: csirt@acme.test, security: true}
    gameday: {email: gameday@acme.test, drill: true}
    siem: {webhook: RECEIVER/siem, secret_env: HIKESHI_TEST_HOOK_SECRET, security: true}
  rules:
    - name: everyone
      on: [declared, severity_changed, status_updated, closed]
      to: [oncall, csirt, gameday, siem]
    - name: outside
      on: [declared]
      confidential: false
      drill: false
      template: external
      to: [oncall]
`)
	const title, service, summary = "Credential stuffing against customer login", "identity-gateway", "rotating residential IPs hit /login"
	secrets := []string{title, service, summary, "blocked ASN 64512", "forced resets for 3,200 accounts", "rate limit login earlier"}
	conf := e.h.Declare(t, incident.Declare{Title: title, Service: service, Severity: "SEV2", Summary: summary, Confidential: true})
	e.h.Do(t, conf.ID, incident.ChangeSeverity{Severity: "SEV1", Reason: "blocked ASN 64512"})
	e.h.Do(t, conf.ID, incident.UpdateStatus{Status: "monitoring", Message: "forced resets for 3,200 accounts"})
	e.h.Do(t, conf.ID, incident.UpdateStatus{Status: "resolved"})
	e.h.Do(t, conf.ID, incident.Close{Resolution: "forced resets for 3,200 accounts", LessonsLearned: "rate limit login earlier"})
	drill := e.h.Declare(t, incident.Declare{Title: "Game day: search zone loss", Service: "search", Severity: "SEV3", Drill: true})
	plain := e.h.Declare(t, incident.Declare{Title: "Search latency", Service: "search", Severity: "SEV4"})

	p := e.projector(t)
	for _, id := range []string{conf.ID, drill.ID, plain.ID} {
		e.h.Replay(t, id, p.Handle)
	}
	recipients := func(id string) []string {
		var out []string
		for _, f := range e.facts(t, id) {
			out = append(out, f.Rule+"/"+f.Recipient)
		}
		return out
	}
	if got, want := recipients(conf.ID), strings.Fields(strings.Repeat("everyone/csirt@acme.test everyone/siem ", 5)); !slices.Equal(got, want) {
		t.Errorf("confidential incident told %v, want %v", got, want)
	}
	if got := recipients(drill.ID); !slices.Equal(got, []string{"everyone/gameday@acme.test"}) {
		t.Errorf("drill told %v", got)
	}
	if got := recipients(plain.ID); !slices.Equal(got, []string{"everyone/oncall@acme.test", "everyone/csirt@acme.test",
		"everyone/gameday@acme.test", "everyone/siem", "outside/oncall@acme.test"}) {
		t.Errorf("ordinary incident told %v", got)
	}

	msgs := e.mp.messages(t)
	var traffic strings.Builder
	for _, m := range msgs {
		traffic.WriteString(m.Raw)
		traffic.WriteString(m.Subject + m.Text + m.HTML)
		if m.To[0].Address == "csirt@acme.test" && strings.Contains(m.Subject, conf.CaseNumber+" ") {
			if !strings.Contains(m.Subject, conf.Codename) || !strings.Contains(m.Text, integration.Withheld) {
				t.Errorf("confidential mail %q:\n%s", m.Subject, m.Text)
			}
		}
		if strings.Contains(m.Subject, drill.CaseNumber+" ") && (m.To[0].Address != "gameday@acme.test" || !strings.HasPrefix(m.Subject, "[DRILL] ") || !strings.Contains(m.Text, "DRILL")) {
			t.Errorf("drill mail %q:\n%s", m.Subject, m.Text)
		}
	}
	payloads, bodies, bad := e.hook.deliveries()
	traffic.WriteString(bodies)
	if len(bad) != 0 || len(payloads) != 6 {
		t.Errorf("%d webhooks, failures %v", len(payloads), bad)
	}
	if payloads[0].Incident.Title != conf.Codename || !payloads[0].Incident.Confidential {
		t.Errorf("confidential payload %+v", payloads[0].Incident)
	}
	for _, s := range secrets {
		if strings.Contains(traffic.String(), s) {
			t.Errorf("outbound traffic contains %q", s)
		}
	}
	if !strings.Contains(traffic.String(), conf.Codename) {
		t.Error("the codename is in no notification: the test checked nothing")
	}
}

// TestRefusalsAreRecordedNotRetried: a mailbox the server refuses (550)
// and a webhook URL that answers 404 are recorded as refused once; the
// other recipients of the same event are still told.
func TestRefusalsAreRecordedNotRetried(t *testing.T) {
	e := setup(t, `  recipients:
    gone: {email: nobody@elsewhere.test}
    oncall: {email: oncall@acme.test}
    old: {webhook: RECEIVER/old, secret_env: HIKESHI_TEST_HOOK_SECRET}
  rules:
    - name: all
      on: [declared]
      to: [gone, old, oncall]
`, `--smtp-allowed-recipients`, `@acme\.test$`)
	e.hook.script(answer{status: 404})
	st := e.h.Declare(t, incident.Declare{Title: "Disk full", Service: "db", Severity: "SEV3"})
	p := e.projector(t)
	e.h.Replay(t, st.ID, p.Handle)
	e.h.Replay(t, st.ID, p.Handle)
	facts := e.facts(t, st.ID)
	if len(facts) != 3 {
		t.Fatalf("facts %+v", facts)
	}
	if facts[0].Outcome != events.NotifyRefused || !strings.Contains(facts[0].Detail, "550") {
		t.Errorf("refused mailbox: %+v", facts[0])
	}
	if facts[1].Outcome != events.NotifyRefused || facts[1].Detail != "HTTP 404" {
		t.Errorf("refused webhook: %+v", facts[1])
	}
	if facts[2].Outcome != events.NotifyAccepted || e.mp.count(t) != 1 {
		t.Errorf("oncall: %+v, %d mails", facts[2], e.mp.count(t))
	}
}

// TestSMTPAuthentication logs in with the password from the environment;
// a wrong password is retried later, not dropped.
func TestSMTPAuthentication(t *testing.T) {
	dir := t.TempDir()
	authFile := filepath.Join(dir, "smtp-users")
	if err := os.WriteFile(authFile, []byte("hikeshi:s3cret-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HIKESHI_TEST_SMTP_PASSWORD", "wrong")
	section := `  recipients:
    oncall: {email: oncall@acme.test}
  rules:
    - name: all
      on: [declared]
      to: [oncall]
`
	mp := startMailpit(t, "--smtp-auth-file", authFile, "--smtp-auth-allow-insecure")
	yaml := fmt.Sprintf("notify:\n  smtp:\n    host: localhost\n    port: %d\n    from: incidents@acme.test\n    tls: none\n    username: hikeshi\n    password_env: HIKESHI_TEST_SMTP_PASSWORD\n%s", mp.smtp, section)
	h := integrationtest.New(t, yaml)
	load := func() *notify.Projector {
		cfg, sec, err := notify.Load(h.Env.Config)
		if err != nil {
			t.Fatal(err)
		}
		p, err := notify.New(cfg, sec, h.Env, notify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	st := h.Declare(t, incident.Declare{Title: "API errors", Service: "api", Severity: "SEV2"})
	err := load().Handle(context.Background(), h.Events(t, st.ID)[0])
	if err == nil || errors.Is(err, projection.ErrPermanent) || !strings.Contains(err.Error(), "auth") {
		t.Fatalf("wrong password: err = %v, want a retryable auth error", err)
	}
	t.Setenv("HIKESHI_TEST_SMTP_PASSWORD", "s3cret-pass")
	if err := load().Handle(context.Background(), h.Events(t, st.ID)[0]); err != nil {
		t.Fatal(err)
	}
	if n := mp.count(t); n != 1 {
		t.Fatalf("%d mails", n)
	}
}

// TestCustomTemplates replaces the internal template's parts with files.
func TestCustomTemplates(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	txt := write("brief.txt", "{{.CaseNumber}} is {{.Severity}}: {{.Title}}\n")
	html := write("brief.html", "<p>{{.Title}}</p>\n")
	e := setup(t, fmt.Sprintf(`  templates:
    internal: {text: %s}
    brief: {subject: "{{.CaseNumber}} {{.Headline}}", text: %s, html: %s}
  recipients:
    oncall: {email: oncall@acme.test}
  rules:
    - name: staff
      on: [declared]
      to: [oncall]
    - name: execs
      on: [declared]
      template: brief
      to: [oncall]
`, txt, txt, html))
	st := e.h.Declare(t, incident.Declare{Title: "Fish & <chips>", Service: "api", Severity: "SEV2"})
	e.h.Replay(t, st.ID, e.projector(t).Handle)
	msgs := e.mp.messages(t)
	if len(msgs) != 2 {
		t.Fatalf("%d mails", len(msgs))
	}
	if msgs[0].Text != "INC-1 is SEV2: Fish & <chips>\r\n" && msgs[0].Text != "INC-1 is SEV2: Fish & <chips>\n" {
		t.Errorf("custom internal text %q", msgs[0].Text)
	}
	if !strings.Contains(msgs[0].HTML, "Severity") {
		t.Errorf("internal HTML should stay built in: %s", msgs[0].HTML)
	}
	if msgs[1].Subject != "INC-1 declared" || !strings.Contains(msgs[1].HTML, "Fish &amp; &lt;chips&gt;") {
		t.Errorf("brief: %q %q", msgs[1].Subject, msgs[1].HTML)
	}
	if f := e.facts(t, st.ID); len(f) != 2 || f[1].Template != "brief" {
		t.Errorf("facts %+v", f)
	}
}
